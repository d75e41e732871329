ALTER TABLE subscription_deliveries DROP COLUMN events, DROP COLUMN last_index;
ALTER TABLE subscriptions DROP COLUMN batch_end, DROP COLUMN batch_max;

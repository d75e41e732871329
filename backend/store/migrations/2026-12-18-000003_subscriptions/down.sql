DROP TABLE subscription_deliveries;
DROP TABLE subscriptions;

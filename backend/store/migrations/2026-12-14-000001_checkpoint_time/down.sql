DROP INDEX checkpoints_created_at;

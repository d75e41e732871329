DROP TABLE export_series;

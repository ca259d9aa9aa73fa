"""Risk measures: the estimators every reported statistic comes from."""

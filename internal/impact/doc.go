// Package impact estimates who an incident hurt: the distinct users and
// customers that failed in a window and a scope, corrected for sampling
// and for those who fail anyway (the baseline), with an interval, per
// customer, service and route. Counting happens in ClickHouse; only
// frequency tables (how many users were seen once, twice, …) reach Go,
// where Estimator corrects them for sampling.
package impact

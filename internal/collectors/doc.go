// Package collectors groups correlator's collectors, one subpackage per
// source. Each turns what its source says into event records and hands
// them to a writer; none talks to ClickHouse directly.
package collectors

package main

// Reference figures: Prometheus TSDB, the fastest embedded peer, on the
// standard full workloads of WORKLOADS.md.
//
// Source: /work/shared/PEERS.md of 2026-11-21, "What users would pick
// instead: measured on this machine" — github.com/prometheus/prometheus
// v0.315.0 as an embedded Go library, on one of these 2-core, 24 GiB
// machines, 10M points per workload, batched ingest of 1,000 points per call
// including the generation of the data, query answers checked against exact
// ground truth. PEERS.md gives two runs for ingest; ±20% run to run.
//
// They apply to the standard full workload only (-full, default seed, no
// out-of-order points or duplicates). PEERS.md does not state the peers'
// fsync policy; its bytes/point for Prometheus count the WAL as well as
// the blocks (the blocks alone in parentheses).
//
// Keep this table in step with PEERS.md; do not edit the numbers otherwise.

import "github.com/eventmetrics/eventmetrics/bench/workload"

const peersSource = "PEERS.md of 2026-11-21"

const peerEngine = "Prometheus TSDB v0.315 (embedded Go library)"

// peerFigures are one engine's figures on one workload.
type peerFigures struct {
	Ingest1       [2]float64 // M points/s, 1 writer, two runs
	Ingest2       [2]float64 // M points/s, 2 writers, two runs
	BytesPerPoint float64    // on disk, WAL included
	BlocksPerPt   float64    // on disk, blocks only
	PeakRSSMiB    [2]float64 // low, high
	QueryMs       [4]float64 // Q1..Q4
}

var prometheusTSDB = map[workload.Kind]peerFigures{
	workload.Event: {
		Ingest1:       [2]float64{4.16, 3.52},
		Ingest2:       [2]float64{5.87, 6.75},
		BytesPerPoint: 22.1,
		BlocksPerPt:   9.47,
		PeakRSSMiB:    [2]float64{215, 215},
		QueryMs:       [4]float64{1.5, 15.1, 31.1, 641},
	},
	workload.Scrape: {
		Ingest1:       [2]float64{4.71, 5.31},
		Ingest2:       [2]float64{7.47, 7.29},
		BytesPerPoint: 2.63,
		BlocksPerPt:   1.41,
		PeakRSSMiB:    [2]float64{90, 103},
		QueryMs:       [4]float64{1.1, 10.8, 27.5, 370},
	},
}

func mean2(v [2]float64) float64 { return (v[0] + v[1]) / 2 }

//go:build invariants || race

package wal

// invariants enables internal consistency checks that panic on a bug. It is
// on in tests run with -race or -tags invariants and costs nothing otherwise.
const invariants = true

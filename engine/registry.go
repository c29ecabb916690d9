package engine

import (
	"runtime"
	"weak"
)

// The series registry maps keys and ids to Series objects through weak
// pointers. What keeps a Series alive is whoever still needs it: the
// user's handles, the list of series with data not yet in pebble
// (DB.dirty, DB.newSeries), a checkpoint in progress. A series that is
// idle — all its data checkpointed — and that nobody holds is collected
// by the garbage collector, and its registry entries are removed by a
// cleanup; the next write or query loads it again from pebble. So memory
// follows the active series, not every series seen since open, and there
// is never more than one live Series object per series (a held handle
// keeps its object, and lookups find it).

// lookupKey returns the live Series of key, or nil. seriesMu is held.
func (db *DB) lookupKeyLocked(key string) *Series {
	if p, ok := db.byKey[key]; ok {
		return p.Value()
	}
	return nil
}

// lookupIDLocked returns the live Series of id, or nil. seriesMu is held.
func (db *DB) lookupIDLocked(id uint64) *Series {
	if p, ok := db.byID[id]; ok {
		return p.Value()
	}
	return nil
}

// registerLocked enters s in the registry. seriesMu is held.
func (db *DB) registerLocked(s *Series) {
	p := weak.Make(s)
	db.byKey[s.key] = p
	db.byID[s.id] = p
	runtime.AddCleanup(s, db.unregister, registryEntry{key: s.key, id: s.id, p: p})
}

type registryEntry struct {
	key string
	id  uint64
	p   weak.Pointer[Series]
}

// unregister removes the entries of a collected Series, unless they were
// replaced meanwhile by a newer object of the same series.
func (db *DB) unregister(e registryEntry) {
	db.seriesMu.Lock()
	defer db.seriesMu.Unlock()
	if p, ok := db.byKey[e.key]; ok && p == e.p {
		delete(db.byKey, e.key)
	}
	if p, ok := db.byID[e.id]; ok && p == e.p {
		delete(db.byID, e.id)
	}
}

// LiveSeries returns the number of series held in memory (the registry's
// entries; an entry whose object became unreachable counts until its
// cleanup runs, shortly after a garbage collection).
func (db *DB) LiveSeries() int {
	db.seriesMu.RLock()
	defer db.seriesMu.RUnlock()
	return len(db.byID)
}

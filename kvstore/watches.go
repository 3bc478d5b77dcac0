package kvstore

import (
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// minWatchGeneration is the fewest watches a generation holds before it
// ages (see watches).
const minWatchGeneration = 1024

// watches hands out the channels that blocking reads of one database
// wait on: one per watched key and one per watched prefix, closed once a
// committed write changed that key or a key under that prefix, deletes
// included. Only what is watched costs memory.
//
// A read registers with the seq of its snapshot (kvTable.seq). Writes
// commit and then notify, and a read may register after a write it did
// not see has notified: such a read gets a closed channel, so that it
// reads again, rather than wait for a change that it missed.
//
// Nothing tells when a watch is given up, so watches age in two
// generations: new ones go to cur, and one in old that is registered
// again moves to cur; when cur has grown past max(minWatchGeneration,
// len(old)), what is left in old is closed (a read still waiting on it
// wakes and registers again) and cur becomes old. A watch nobody waits on
// is dropped within two generations, and a read still waiting is woken
// for nothing at most once every two.
type watches struct {
	mu sync.Mutex
	// notified is the highest seq whose changes were notified.
	notified uint64
	cur, old map[watchKey]chan struct{}
	// prefixLens counts the prefix watches of each length, in both
	// generations, so that a changed key is looked up only under the
	// prefixes someone watches.
	prefixLens map[int]int
	// closed is the channel a stale read gets.
	closed chan struct{}
}

// watchKey names a watch: a key, or with prefix every key under it.
type watchKey struct {
	key    string
	prefix bool
}

func newWatches() *watches {
	w := &watches{
		cur:        map[watchKey]chan struct{}{},
		old:        map[watchKey]chan struct{}{},
		prefixLens: map[int]int{},
		closed:     make(chan struct{}),
	}
	close(w.closed)
	return w
}

// add adds to ws the channel of key (with prefix, of every key under it),
// for a read of the snapshot at seq.
func (w *watches) add(ws memdb.WatchSet, seq uint64, key string, prefix bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notified > seq {
		ws.Add(w.closed)
		return
	}
	k := watchKey{key: key, prefix: prefix}
	ch, ok := w.cur[k]
	if !ok {
		if ch, ok = w.old[k]; ok {
			delete(w.old, k)
		} else {
			ch = make(chan struct{})
			if prefix {
				w.prefixLens[len(key)]++
			}
		}
		w.cur[k] = ch
		if len(w.cur) > max(minWatchGeneration, len(w.old)) {
			for k, ch := range w.old {
				w.drop(w.old, k, ch)
			}
			w.old, w.cur = w.cur, map[watchKey]chan struct{}{}
		}
	}
	ws.Add(ch)
}

// notify closes the channels of the keys a write at seq changed, and of
// the prefixes above them.
func (w *watches) notify(seq uint64, changed []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notified = max(w.notified, seq)
	if len(w.cur)+len(w.old) == 0 {
		return
	}
	for _, key := range changed {
		w.fire(watchKey{key: key})
		for n := range w.prefixLens {
			if n <= len(key) {
				w.fire(watchKey{key: key[:n], prefix: true})
			}
		}
	}
}

// fire closes the channel of k, if someone watches it.
func (w *watches) fire(k watchKey) {
	for _, gen := range [2]map[watchKey]chan struct{}{w.cur, w.old} {
		if ch, ok := gen[k]; ok {
			w.drop(gen, k, ch)
		}
	}
}

// drop closes ch, the channel of k, and forgets it.
func (w *watches) drop(gen map[watchKey]chan struct{}, k watchKey, ch chan struct{}) {
	close(ch)
	delete(gen, k)
	if k.prefix {
		if w.prefixLens[len(k.key)]--; w.prefixLens[len(k.key)] == 0 {
			delete(w.prefixLens, len(k.key))
		}
	}
}

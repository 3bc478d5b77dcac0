//go:build race

package wait

// Race reports whether the race detector is built in.
const Race = true

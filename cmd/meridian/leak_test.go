package main

import (
	"testing"

	"github.com/meridian/meridian/internal/leaktest"
)

// TestMain fails the run if a goroutine the tests started outlives them.
func TestMain(m *testing.M) { leaktest.Main(m) }

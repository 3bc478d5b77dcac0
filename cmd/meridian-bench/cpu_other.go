//go:build !unix

package main

import "time"

// selfCPU is -1: this platform's CPU time is not read.
func selfCPU() time.Duration { return -1 }

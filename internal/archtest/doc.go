// Package archtest holds the test that keeps the imports true to DESIGN.md's
// table: each package imports only the packages below it.
package archtest

// Package cputime reads the CPU time this process has used, the steadier measure of a
// benchmark's cost on a machine whose disk and neighbours make wall time vary.
package cputime

// Package ratelog writes the log lines a peer can provoke (a malformed
// packet, a connection refused for a limit) at most once per interval for
// each message, with the number of lines it left out, so that a flood of bad input cannot
// flood the log or spend the agent's time writing it.
//
// Where it sits (DESIGN.md): beside the packages that face the network
// (rpc, lan, httpapi), which import it; it imports only the standard
// library. A Logger is safe for concurrent use.
package ratelog

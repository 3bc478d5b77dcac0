package rpc

// MethodEventFire gossips a user event in the LAN pool of the datacenter it
// is sent to (Write[EventFireRequest], WriteResult): the agent that fires
// it sends it to a server of its datacenter, which forwards it to the
// datacenter the request names, so that the token is checked (event:write
// on Name) before anything is gossiped.
const MethodEventFire = "Internal.EventFire"

// UserEventPrefix prefixes the gossip name of a user event fired through
// MethodEventFire, so that the pool's own events never pass for one.
const UserEventPrefix = "meridian:event:"

// EventFireRequest is one user event: its Name (for the ACL check) and the
// Payload to gossip, the event as the agent encoded it (ID, filters and
// the user's payload).
type EventFireRequest struct {
	Name    string
	Payload []byte
}

package rpc

// MethodKeyringOperation runs a gossip keyring operation on the LAN pool
// of the datacenter it is sent to (Write[KeyringRequest], KeyringAnswer):
// a server that manages the keyring sends it to a server of every other
// datacenter, so one command rotates them all.
const MethodKeyringOperation = "Keyring.Operation"

// KeyringRequest is one keyring operation: Op is "list", "install", "use"
// or "remove", Key the base64 key (empty for a list).
type KeyringRequest struct {
	Op  string
	Key string
}

// KeyringAnswer is what the pool's members answered: for each base64 key
// how many hold it (Keys) or send with it (PrimaryKeys), out of NumNodes;
// Messages has each member's refusal.
type KeyringAnswer struct {
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
	Messages    map[string]string
}

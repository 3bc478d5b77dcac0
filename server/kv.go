package server

// registerKVEndpoints registers the KV, session and txn endpoints.
func (s *Server) registerKVEndpoints() {}

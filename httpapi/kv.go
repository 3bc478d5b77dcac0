package httpapi

// kvRoutes registers /v1/kv, /v1/session and /v1/txn.
func (s *Server) kvRoutes() {}

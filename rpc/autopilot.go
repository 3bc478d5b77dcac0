package rpc

import "time"

// Method names of autopilot's endpoints.
const (
	// MethodAutopilotGetConfig reads the autopilot configuration
	// (Query[struct{}] in, Answer[AutopilotConfig] out).
	MethodAutopilotGetConfig = "Operator.AutopilotGetConfiguration"
	// MethodAutopilotSetConfig replaces it (Write[AutopilotSetRequest] in,
	// WriteResult out; OK is false when a check-and-set lost).
	MethodAutopilotSetConfig = "Operator.AutopilotSetConfiguration"
	// MethodAutopilotHealth is the leader's view of every server's health
	// (Query[struct{}] in, Answer[AutopilotHealth] out).
	MethodAutopilotHealth = "Operator.ServerHealth"
	// MethodRaftStats is one server's own Raft progress, which the leader
	// asks every server for (struct{} in, RaftStats out); never forwarded.
	MethodRaftStats = "Status.RaftStats"
)

// AutopilotConfig is autopilot's configuration, stored through Raft; the
// fields are Consul's.
type AutopilotConfig struct {
	CleanupDeadServers      bool
	LastContactThreshold    time.Duration
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime time.Duration
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	CreateIndex             uint64
	ModifyIndex             uint64
}

// DefaultAutopilotConfig is Consul's default autopilot configuration.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{
		CleanupDeadServers:      true,
		LastContactThreshold:    200 * time.Millisecond,
		MaxTrailingLogs:         250,
		ServerStabilizationTime: 10 * time.Second,
	}
}

// AutopilotSetRequest replaces the configuration; with CAS only when the
// stored one's ModifyIndex is Config.ModifyIndex (0: none stored yet).
type AutopilotSetRequest struct {
	Config AutopilotConfig
	CAS    bool
}

// RaftStats is a server's own Raft progress. LastContact is how long ago
// it heard from the leader (0 on the leader, negative when never).
type RaftStats struct {
	LastContact time.Duration
	LastTerm    uint64
	LastIndex   uint64
}

// ServerHealth is one server as autopilot sees it.
type ServerHealth struct {
	ID          string
	Name        string
	Address     string
	SerfStatus  string
	Version     string
	Leader      bool
	LastContact time.Duration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	Voter       bool
	StableSince time.Time
}

// AutopilotHealth is the health of the datacenter's servers.
// FailureTolerance is how many voters may fail with a quorum left.
type AutopilotHealth struct {
	Healthy          bool
	FailureTolerance int
	Servers          []ServerHealth
}

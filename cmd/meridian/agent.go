package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meridian/meridian/agent"
	"github.com/meridian/meridian/configs"
)

func runAgent(args []string, stdout, stderr io.Writer) int {
	cfg, err := configs.Load(args, os.Environ(), stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "meridian agent: %v\n", err)
		return 1
	}
	if cfg.PidFile != "" {
		remove, err := writePidFile(cfg.PidFile)
		if err != nil {
			fmt.Fprintf(stderr, "meridian agent: %v\n", err)
			return 1
		}
		defer remove()
	}
	logOut := stderr
	if cfg.LogFile != "" {
		lf, err := openLogFile(cfg.LogFile, cfg.LogRotateBytes, cfg.LogRotateDuration, cfg.LogRotateMaxFiles)
		if err != nil {
			fmt.Fprintf(stderr, "meridian agent: %v\n", err)
			return 1
		}
		defer func() { _ = lf.Close() }()
		logOut = io.MultiWriter(stderr, lf)
	}
	level := new(slog.LevelVar)
	level.Set(agent.LogLevel(cfg.LogLevel))
	logger := newLogger(logOut, level, cfg.LogJSON)
	a, err := agent.New(cfg, agent.Options{Logger: logger, LogLevel: level, ConfigArgs: append([]string{}, args...)})
	if err == nil {
		// Ctrl-C or SIGTERM during the start (a start_join that hangs)
		// stops it.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = a.Start(ctx)
		stop()
	}
	if err != nil {
		fmt.Fprintf(stderr, "meridian agent: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> Meridian agent running: node %s, datacenter %s, server %v, HTTP http://%s\n",
		cfg.NodeName, cfg.Datacenter, cfg.Server, a.HTTPAddr())

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	for {
		select {
		case <-a.Done():
			return 0
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if err := a.Reload(); err != nil {
					logger.Error("reload failed", "error", err)
				}
				continue
			}
			leave := (sig == syscall.SIGINT && !cfg.SkipLeaveOnInterrupt) || (sig == syscall.SIGTERM && cfg.LeaveOnTerminate)
			logger.Info("signal received", "signal", sig.String(), "leave", leave)
			if leave {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				err := a.Leave(ctx)
				cancel()
				if err != nil {
					logger.Warn("graceful leave failed", "error", err)
				}
			}
			a.Shutdown()
			return 0
		}
	}
}

// newLogger builds the agent's logger, filtering at level (which reload
// changes).
func newLogger(w io.Writer, level *slog.LevelVar, asJSON bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
)

// Remote exec (`meridian exec`), as Consul does it: the CLI writes a job
// under _rexec/SESSION/job in KV and fires the _rexec event; each agent the
// event's filters let through (and where disable_remote_exec is false)
// acks under _rexec/SESSION/NODE/ack, runs the job, writes its output in
// chunks under .../NODE/out/NNNNN and its exit code under .../NODE/exit.
// Every write holds the CLI's session, so they go when it ends.
const (
	remoteExecEvent  = "_rexec"
	remoteExecPrefix = "_rexec"
	// remoteExecOutputSize is the largest output chunk (Consul's 4 KiB);
	// remoteExecOutputDeadline is how long output waits for more before
	// it is written anyway.
	remoteExecOutputSize     = 4 * 1024
	remoteExecOutputDeadline = 500 * time.Millisecond
	// remoteExecDefaultTimeout bounds a job that names no Timeout.
	remoteExecDefaultTimeout = 10 * time.Minute
	// remoteExecTimeoutExit is the exit code of a job killed at its
	// timeout (timeout(1)'s).
	remoteExecTimeoutExit = 124
	// remoteExecJobWait bounds the wait for the job spec to be readable.
	remoteExecJobWait = 5 * time.Second
)

// remoteExecMessage is the _rexec event's payload.
type remoteExecMessage struct {
	Prefix  string
	Session string
}

// remoteExecSpec is the job: Command runs through sh -c, else Script (what
// Consul's CLI sends for `consul exec -`) through sh -c, else Args as they
// are. Timeout (Meridian's; zero means remoteExecDefaultTimeout) is how
// long the job may run before it is killed.
type remoteExecSpec struct {
	Command string
	Args    []string
	Script  []byte
	Timeout time.Duration
}

// handleRemoteExec runs the job a _rexec event announces.
func (a *Agent) handleRemoteExec(ev *httpapi.UserEvent) {
	if a.cfg.DisableRemoteExec {
		a.logger.Info("ignoring remote exec job: disable_remote_exec is true", "id", ev.ID)
		return
	}
	var msg remoteExecMessage
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		a.logger.Warn("ignoring remote exec job: unreadable event payload", "id", ev.ID, "error", err)
		return
	}
	if msg.Prefix != remoteExecPrefix || msg.Session == "" || strings.ContainsAny(msg.Session, "/ ") {
		a.logger.Warn("ignoring remote exec job: bad prefix or session", "prefix", msg.Prefix, "session", msg.Session)
		return
	}
	dir := msg.Prefix + "/" + msg.Session
	log := a.logger.With("session", msg.Session)
	ctx := a.ctx

	spec, err := a.readExecSpec(ctx, dir+"/job")
	if err != nil {
		log.Warn("remote exec: cannot read the job", "error", err)
		return
	}
	node := dir + "/" + a.cfg.NodeName
	if err := a.rexecWrite(ctx, node+"/ack", msg.Session, nil); err != nil {
		log.Warn("remote exec: cannot ack the job", "error", err)
		return
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = remoteExecDefaultTimeout
	}
	log.Info("remote exec: running job", "command", spec.Command, "args", spec.Args, "timeout", timeout)

	var cmd *exec.Cmd
	switch {
	case spec.Command != "":
		cmd = exec.Command("/bin/sh", "-c", spec.Command)
	case len(spec.Script) > 0:
		cmd = exec.Command("/bin/sh", "-c", string(spec.Script))
	case len(spec.Args) > 0:
		cmd = exec.Command(spec.Args[0], spec.Args[1:]...)
	default:
		_ = a.rexecWrite(ctx, node+"/out/00000", msg.Session, []byte("meridian exec: the job names no command\n"))
		_ = a.rexecWrite(ctx, node+"/exit", msg.Session, []byte("1"))
		return
	}
	// Its own process group, so that a timeout kills what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// A child that outlives the job keeps its output open: stop reading it
	// a second after the job ends.
	cmd.WaitDelay = time.Second
	out := &execOutput{a: a, ctx: ctx, dir: node + "/out/", session: msg.Session}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		out.copy(pr)
	}()

	code := 0
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(pw, "meridian exec: cannot start the command: %v\n", err)
		code = 127
	} else {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		timer := time.NewTimer(timeout)
		select {
		case err = <-done:
		case <-timer.C:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			err = nil
			code = remoteExecTimeoutExit
			fmt.Fprintf(pw, "meridian exec: killed after %s: the command did not finish within the timeout (exec -timeout)\n", timeout)
			log.Warn("remote exec: job killed at its timeout", "timeout", timeout)
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			err, code = nil, 1
		}
		timer.Stop()
		var exitErr *exec.ExitError
		switch {
		case errors.As(err, &exitErr):
			code = exitErr.ExitCode()
			if code < 0 {
				code = 128 + int(exitErr.Sys().(syscall.WaitStatus).Signal())
			}
		case err != nil:
			code = 1
		}
	}
	pw.Close()
	<-copied
	if err := a.rexecWrite(ctx, node+"/exit", msg.Session, []byte(strconv.Itoa(code))); err != nil {
		log.Warn("remote exec: cannot write the exit code", "error", err)
	}
}

// readExecSpec reads the job, retrying while it has not reached the
// server that answers (a stale read, or a write still replicating).
func (a *Agent) readExecSpec(ctx context.Context, key string) (*remoteExecSpec, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteExecJobWait)
	defer cancel()
	for {
		q := rpc.Query[kvstore.KeyRequest]{QueryOptions: rpc.QueryOptions{Token: a.agentToken()}, Args: kvstore.KeyRequest{Key: key}}
		var reply rpc.Answer[*kvstore.DirEntry]
		err := a.RPC(ctx, rpc.MethodKVGet, &q, &reply)
		if err == nil && reply.Value != nil {
			var spec remoteExecSpec
			if err := json.Unmarshal(reply.Value.Value, &spec); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
			return &spec, nil
		}
		if err == nil {
			err = fmt.Errorf("%s not found", key)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rexecWrite writes value at key holding session (a lock acquisition), so
// that the key goes when the session does.
func (a *Agent) rexecWrite(ctx context.Context, key, session string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w := rpc.Write[kvstore.KVRequest]{
		WriteOptions: rpc.WriteOptions{Token: a.agentToken()},
		Args:         kvstore.KVRequest{Op: kvstore.VerbLock, Key: key, Value: value, Session: session},
	}
	var reply rpc.WriteResult
	if err := a.RPC(ctx, rpc.MethodKVApply, &w, &reply); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if !reply.OK {
		return fmt.Errorf("write %s: session %s is not valid", key, session)
	}
	return nil
}

// execOutput writes a job's output to KV in numbered chunks of at most
// remoteExecOutputSize bytes, each written once it is full or
// remoteExecOutputDeadline after its first byte.
type execOutput struct {
	a       *Agent
	ctx     context.Context
	dir     string
	session string
	n       int
}

func (o *execOutput) copy(r io.Reader) {
	chunks := make(chan []byte)
	go func() {
		defer close(chunks)
		buf := make([]byte, remoteExecOutputSize)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	var (
		pending []byte
		timer   <-chan time.Time
	)
	flush := func() {
		for len(pending) > 0 {
			n := min(len(pending), remoteExecOutputSize)
			key := fmt.Sprintf("%s%05x", o.dir, o.n)
			o.n++
			if err := o.a.rexecWrite(o.ctx, key, o.session, pending[:n]); err != nil {
				o.a.logger.Warn("remote exec: cannot write output", "error", err)
			}
			pending = pending[n:]
		}
		pending = nil
		timer = nil
	}
	for {
		select {
		case c, ok := <-chunks:
			if !ok {
				flush()
				return
			}
			if len(pending) == 0 {
				timer = time.After(remoteExecOutputDeadline)
			}
			pending = append(pending, c...)
			if len(pending) >= remoteExecOutputSize {
				flush()
			}
		case <-timer:
			flush()
		}
	}
}

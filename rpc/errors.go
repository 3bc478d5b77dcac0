package rpc

import (
	"errors"
	"fmt"
)

// Error is a failure reported by the remote side of a call. It crosses the
// wire as its Code and Message, so a caller can match it with errors.Is
// against a sentinel *Error with the same Code, defined in any package:
//
//	var ErrNoLeader = &rpc.Error{Code: "no_leader", Message: "no cluster leader"}
//
// On the server, a handler's error is sent with the Code of the first *Error
// found in its chain by errors.As (or "" when there is none) and the message
// err.Error().
type Error struct {
	// Code identifies the kind of failure; "" for an uncoded error.
	Code string
	// Message is the human-readable text of the remote error.
	Message string
}

// Error returns the message, or the code when the message is empty.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Is reports whether target is an *Error with the same non-empty Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e.Code != "" && t.Code == e.Code
}

// Codes used by this package for failures it detects itself.
const (
	// CodeUnknownMethod is sent when no handler is registered for a method.
	CodeUnknownMethod = "unknown_method"
	// CodeBadRequest is sent when the request body does not decode into the
	// handler's argument type (ErrBadRequest, in messages.go, carries it).
	CodeBadRequest = "bad_request"
	// CodeInternal is sent when a handler panics or its reply cannot be
	// encoded.
	CodeInternal = "internal"
	// CodeShutdown is sent when the server is shutting down.
	CodeShutdown = "shutdown"
)

var (
	// ErrUnknownMethod matches (with errors.Is) the remote error for a method
	// the server has no handler for.
	ErrUnknownMethod = &Error{Code: CodeUnknownMethod, Message: "unknown method"}
	// ErrInternal matches the remote error for a handler that panicked or
	// whose reply could not be encoded.
	ErrInternal = &Error{Code: CodeInternal, Message: "internal server error"}

	// ErrTransport is wrapped by every Pool.Call error caused by the
	// connection rather than by the remote handler: dial failures, a dead
	// session, a broken or malformed stream. The request may or may not have
	// reached the server; the caller may retry it on another server when the
	// operation is idempotent.
	ErrTransport = errors.New("rpc transport failure")

	// ErrFrameTooLarge is returned (wrapped, together with ErrTransport on the
	// client) when a peer announces a message longer than the configured
	// MaxMessageSize.
	ErrFrameTooLarge = errors.New("rpc message too large")

	// ErrPoolClosed is returned by Pool.Call after Pool.Close.
	ErrPoolClosed = errors.New("rpc pool closed")
)

// remoteError converts a handler error into what goes on the wire.
func remoteError(err error) (code, msg string) {
	var re *Error
	if errors.As(err, &re) {
		code = re.Code
	}
	msg = err.Error()
	if msg == "" {
		msg = "remote error"
	}
	return code, msg
}

// transportError wraps err with ErrTransport and the call's context.
// ErrMaybeDelivered is wrapped, beside ErrTransport, by a call whose
// request was wholly sent before the connection failed: the server may have
// applied it, so a write must not be sent again blindly.
var ErrMaybeDelivered = errors.New("request may have been delivered")

func transportError(method, addr string, err error) error {
	return fmt.Errorf("rpc %s to %s: %w: %w", method, addr, ErrTransport, err)
}

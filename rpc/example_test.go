package rpc_test

import (
	"context"
	"fmt"
	"log"

	"github.com/meridian/meridian/rpc"
)

// A WAN link between two servers over QUIC, authenticated by the gossip key
// both hold: the server serves QUIC links, and a Pool whose DialSession is
// DialQUIC calls it.
func ExampleDialQUIC() {
	gossipKey := []byte("0123456789abcdef0123456789abcdef")

	// dc2's server.
	serverTLS, err := rpc.ClusterTLS(gossipKey, "dc2-s1")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := rpc.ListenQUIC("127.0.0.1:0", rpc.QUICConfig{TLS: serverTLS})
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.ServerConfig{})
	rpc.Register(srv, "Status.Ping", func(ctx context.Context, args *string, reply *string) error {
		*reply = "pong to " + *args
		return nil
	})
	served := make(chan struct{})
	go func() { defer close(served); srv.ServeQUIC(ln) }()
	defer func() { srv.Shutdown(); <-served }()

	// dc1's server, forwarding to dc2.
	clientTLS, err := rpc.ClusterTLS(gossipKey, "dc1-s1")
	if err != nil {
		log.Fatal(err)
	}
	wan := rpc.QUICConfig{TLS: clientTLS}
	pool := rpc.NewPool(rpc.PoolConfig{
		DialSession: func(ctx context.Context, addr string) (rpc.Session, error) {
			return rpc.DialQUIC(ctx, addr, wan)
		},
	})
	defer pool.Close()

	var reply string
	if err := pool.Call(context.Background(), ln.Addr().String(), "Status.Ping", "dc1-s1", &reply); err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply)
	// Output: pong to dc1-s1
}

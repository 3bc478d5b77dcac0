package configs

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestExamples loads every agent dir of examples/ the way its README runs it
// (from the repository root, once the walkthrough has made the certificates,
// here stand-ins, which Validate only opens), and checks that the
// datacenters fit together: three servers each, one address and data_dir
// per agent, and each datacenter's servers WAN-joining every other's. Not
// parallel: it changes the working directory.
func TestExamples(t *testing.T) {
	exampleRoot(t)
	dirs, err := filepath.Glob(filepath.Join("configs", "examples", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() && filepath.Base(filepath.Dir(d)) != "certs" {
			agents = append(agents, d)
		}
	}
	if len(agents) < 8 {
		t.Fatalf("examples hold %d agent dirs (%q), want at least 8", len(agents), agents)
	}
	servers := make(map[string][]*Config) // by datacenter
	loaded := make(map[string]*Config)    // by dir
	for _, dir := range agents {
		t.Run(dir, func(t *testing.T) {
			args := []string{"-config-dir", dir}
			c := mustLoad(t, args, nil)
			loaded[dir] = c
			if err := c.Validate(); err != nil {
				t.Errorf("Load(%q).Validate() = %v, want nil", args, err)
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("Load(%q).Warnings() = %q, want none", args, w)
			}
			if c.NodeName != filepath.Base(dir) || c.Datacenter != filepath.Base(filepath.Dir(dir)) {
				t.Errorf("Load(%q) node %q in %q, want %q in %q", args, c.NodeName, c.Datacenter, filepath.Base(dir), filepath.Base(filepath.Dir(dir)))
			}
			if len(c.RetryJoin) == 0 {
				t.Errorf("Load(%q) RetryJoin is empty, want the servers", args)
			}
			if c.Server {
				servers[c.Datacenter] = append(servers[c.Datacenter], c)
				if c.BootstrapExpect != 3 {
					t.Errorf("Load(%q) BootstrapExpect = %d, want 3", args, c.BootstrapExpect)
				}
			} else if c.joinsWAN() {
				t.Errorf("Load(%q) client joins the WAN pool (%q, %q), want only servers to", args, c.StartJoinWAN, c.RetryJoinWAN)
			}
		})
	}
	if len(servers) < 2 {
		t.Fatalf("examples hold servers of %d datacenters, want at least 2", len(servers))
	}

	binds, dataDirs := make(map[string]string), make(map[string]string)
	for _, dir := range agents {
		c, ok := loaded[dir]
		if !ok {
			continue
		}
		if prev, dup := binds[c.BindAddr]; dup {
			t.Errorf("%s and %s both bind %s, want one address per agent", prev, dir, c.BindAddr)
		}
		binds[c.BindAddr] = dir
		if prev, dup := dataDirs[c.DataDir]; dup {
			t.Errorf("%s and %s both keep state in %s, want one data_dir per agent", prev, dir, c.DataDir)
		}
		dataDirs[c.DataDir] = dir
	}

	for dc, cs := range servers {
		if len(cs) != 3 {
			t.Errorf("examples hold %d servers in %s, want 3", len(cs), dc)
		}
		var want []string // the servers of every other datacenter
		for other, ocs := range servers {
			if other == dc {
				continue
			}
			for _, oc := range ocs {
				want = append(want, oc.BindAddr)
			}
		}
		slices.Sort(want)
		for _, c := range cs {
			got := slices.Sorted(slices.Values(append(slices.Clone(c.StartJoinWAN), c.RetryJoinWAN...)))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s server %s WAN-joins %q, want the servers of the other datacenters %q", dc, c.NodeName, got, want)
			}
		}
	}
}

// exampleRoot makes a temporary directory laid out as the repository root
// is for the examples: configs/examples copied there, with a stand-in for
// every certificate file the walkthrough makes, and changes into it.
func exampleRoot(t *testing.T) {
	t.Helper()
	root := t.TempDir()
	src, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "configs", "examples")
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := []string{"consul-agent-ca.pem"}
	for _, dc := range []string{"dc1", "dc2"} {
		for _, name := range []string{"server-consul-0", "server-consul-1", "server-consul-2", "client-consul-0"} {
			certs = append(certs, dc+"-"+name+".pem", dc+"-"+name+"-key.pem")
		}
	}
	for _, c := range certs {
		if err := os.WriteFile(filepath.Join(dst, "certs", c), []byte("stand-in"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(root)
}

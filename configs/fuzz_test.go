package configs

import "testing"

// fuzzLoad runs one file's content through decoding, checking, merging and
// validation. It must never panic; a config it accepts must validate.
func fuzzLoad(t *testing.T, name string, data []byte) {
	l := newLoader()
	format, _ := formatOf(name)
	l.loadData(name, format, data)
	if len(l.errs) > 0 {
		return
	}
	c, err := l.build()
	if err != nil {
		return
	}
	if err := c.Validate(); err != nil {
		t.Errorf("build() accepted %q, but Validate() = %v", data, err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		"",
		"data_dir: /d\n",
		"data_dir: /d\nserver: true\nbootstrap_expect: 3\nports: {http: 0}\n",
		"dev: true\nservice:\n  name: web\n  check: {http: \"http://a:1/\", interval: 1s}\n",
		"dev: true\nservices: [{Name: a, Meta: {K: v}, Checks: [{TTL: 1s}]}]\n",
		"checks:\n  - {Args: [a], interval: 1s}\nenable_local_script_checks: true\ndev: true\n",
		"- a\n- b\n",
		"a: &a [*a]\n",
		"ports: {http: 99999999999999999999}\n",
		"1: 2\n",
		"data_dir: /d\nretry_join: [a, b]\nencrypt: MDEyMzQ1Njc4OWFiY2RlZg==\n",
		"data_dir: /d\nserver: true\nbootstrap_expect: 3\nretry_join_wan: [a, \"b:8302\"]\nwan_transport: TCP\nfederation: {timeout: 1s, stale_view: false}\n",
		"dev: true\nstart_join_wan: [\"\"]\nadvertise_addr_wan: \"::\"\ntls: {ca_file: /nonexistent}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "fuzz.yaml", data)
	})
}

func FuzzLoadJSON(f *testing.F) {
	for _, seed := range []string{
		"{}",
		`{"data_dir": "/d", "ports": {"http": 1.5}}`,
		`{"dev": true, "Service": {"Name": "w", "Check": {"TCP": "a:1", "Interval": "1s"}}}`,
		`[1]`,
		`{"a": `,
		`{"dev": true, "RetryJoinWAN": ["a"], "WANTransport": "quic", "Federation": {"Timeout": "2s"}, "TLS": {}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "fuzz.json", data)
	})
}

func FuzzLoadHCL(f *testing.F) {
	for _, seed := range []string{
		"",
		"data_dir = \"/d\"\n",
		"dev = true\nservice {\n  name = \"web\"\n  check { http = \"http://a:1/\"\n interval = \"1s\" }\n}\nservice { name = \"b\" }\n",
		"dev = true\nservices = [{ name = \"a\", meta { K = \"v\" } }]\nnode_meta { a = \"b\" }\n",
		"ports { http = 1 }\nports { dns = 2 }\nacl { tokens { agent = \"x\" } }\n",
		"a b c { d = 1 }",
		"x = [1, [2, {}]]",
		"{",
		"connect { enabled = true }\ndev = true\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "fuzz.hcl", data)
	})
}

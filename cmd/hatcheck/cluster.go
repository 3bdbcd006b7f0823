package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
)

const clusterUsage = `usage: hatcheck cluster [flags] status
       hatcheck cluster [flags] remove <node-id>
       hatcheck cluster [flags] transfer-leader [<node-id>]

Talks to a node's HTTP API (--http-addr), or over HTTPS with
--tls-http-addr, trusting --tls-ca-cert-file (else the system's CAs) and
presenting --tls-cert-file and --tls-key-file when given (needed with
--tls-auth-clients yes). Each flag also reads the variable a node reads
(HATCHECK_HTTP_ADDR, HATCHECK_TLS_HTTP_ADDR, ...). With a password set on the
cluster, pass it with --password or HATCHECK_REQUIREPASS.`

// runCluster is `hatcheck cluster`.
func runCluster(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("hatcheck cluster", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), clusterUsage); fs.PrintDefaults() }
	httpAddr := fs.String("http-addr", envOr(getenv, "http-addr", config.Default().HTTPAddr), "HTTP address of any node")
	password := fs.String("password", getenv(config.EnvName("requirepass")), "the cluster's password (--requirepass)")
	tlsAddr := fs.String("tls-http-addr", getenv(config.EnvName("tls-http-addr")), "HTTPS address of any node (wins over --http-addr)")
	caFile := fs.String("tls-ca-cert-file", getenv(config.EnvName("tls-ca-cert-file")), "CA certificate that signs the node's (default: the system's CAs)")
	certFile := fs.String("tls-cert-file", getenv(config.EnvName("tls-cert-file")), "client certificate to present over HTTPS")
	keyFile := fs.String("tls-key-file", getenv(config.EnvName("tls-key-file")), "key of --tls-cert-file")
	asJSON := fs.Bool("json", false, "print status as JSON")
	rest, code, ok := parseArgs(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "hatcheck cluster: missing command: status, remove or transfer-leader (run 'hatcheck cluster -h')")
		return 2
	}
	c := apiClient{base: "http://" + *httpAddr, password: *password, http: &http.Client{Timeout: 30 * time.Second}}
	if *tlsAddr != "" {
		conf, err := clientTLS(*caFile, *certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(stderr, "hatcheck cluster:", err)
			return 2
		}
		c.base = "https://" + *tlsAddr
		c.http.Transport = &http.Transport{TLSClientConfig: conf}
	}
	var err error
	switch {
	case rest[0] == "status" && len(rest) == 1:
		err = c.status(stdout, *asJSON)
	case rest[0] == "remove" && len(rest) == 2:
		err = c.post("/cluster/remove", rest[1])
		if err == nil {
			fmt.Fprintf(stdout, "removed %s\n", rest[1])
		}
	case rest[0] == "transfer-leader" && len(rest) <= 2:
		id := ""
		if len(rest) == 2 {
			id = rest[1]
		}
		err = c.post("/cluster/transfer-leader", id)
		if err == nil {
			fmt.Fprintln(stdout, "leadership transferred")
		}
	default:
		fmt.Fprintf(stderr, "hatcheck cluster: bad arguments %q: want status, remove <node-id> or transfer-leader [<node-id>] (run 'hatcheck cluster -h')\n", rest)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "hatcheck cluster:", err)
		return 1
	}
	return 0
}

// clientTLS trusts the CA in caFile (the system's CAs if "") and presents
// the certificate in certFile and keyFile if given.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

func envOr(getenv func(string) string, flagName, def string) string {
	if v := getenv(config.EnvName(flagName)); v != "" {
		return v
	}
	return def
}

type apiClient struct {
	base, password string
	http           *http.Client
}

// open sends a request and returns the response of a 200, or the API's
// error.
func (c apiClient) open(method, path string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.password != "" {
		req.SetBasicAuth("default", c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return nil, fmt.Errorf("%s", e.Error)
	}
	return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
}

func (c apiClient) do(method, path string, form url.Values) ([]byte, error) {
	resp, err := c.open(method, path, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

func (c apiClient) post(path, id string) error {
	form := url.Values{}
	if id != "" {
		form.Set("id", id)
	}
	_, err := c.do(http.MethodPost, path, form)
	return err
}

func (c apiClient) status(w io.Writer, asJSON bool) error {
	body, err := c.do(http.MethodGet, "/cluster", nil)
	if err != nil {
		return err
	}
	if asJSON {
		_, err = w.Write(body)
		return err
	}
	var st server.ClusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tROLE\tSUFFRAGE\tPEER\tREDIS\tTERM\tAPPLIED\n")
	for _, m := range st.Members {
		role, suffrage := "follower", "voter"
		if m.Leader {
			role = "leader"
		}
		if !m.Voter {
			suffrage = "non-voter"
		}
		redis, term, applied := "-", "-", "-"
		if m.Info != nil {
			redis = m.Info.Meta["redis"]
			term = fmt.Sprint(m.Info.Term)
			applied = fmt.Sprint(m.Info.Applied)
		} else {
			role = "unreachable"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, role, suffrage, m.PeerAddr, redis, term, applied)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.LeaderID == "" {
		fmt.Fprintln(w, "no leader (asked", st.ID+")")
	}
	return nil
}

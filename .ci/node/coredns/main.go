// coredns for bind-ha's test node (tests/harness/node.py): CoreDNS with only the plugins
// the node's Corefile uses, so it builds in a fraction of the time of the full set.
// Built by .ci/setup.sh against COREDNS_VERSION from .ci/versions.env.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives lists the plugins above in CoreDNS's own execution order.
var directives = []string{"ready", "health", "errors", "log", "cache", "kubernetes"}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		panic(err)
	}
	coremain.Run()
}

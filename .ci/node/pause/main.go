// pause is the sandbox process of every pod on bind-ha's test node (tests/harness/node.py):
// it holds the pod's namespaces and does nothing else. As PID 1 of a pod that shares its
// process namespace it also reaps orphaned children. It exits on SIGINT or SIGTERM.
//
// It is built by .ci/setup.sh into a FROM-scratch image tagged as containerd's pinned
// sandbox image (PAUSE_IMAGE in .ci/versions.env), so no registry is ever asked for it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited, without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// Package serve binds the exporter's web listeners as the exporter-toolkit
// would (--web.listen-address, vsock://, --web.systemd-socket), but before
// the pollers start: a start that cannot serve (port taken, bad web config)
// fails before it sends a single API request.
package serve

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
)

// Listen checks the web config file and binds every listener of flags. On
// error, the listeners already bound are closed.
func Listen(flags *web.FlagConfig) ([]net.Listener, error) {
	if *flags.WebConfigFile != "" {
		if err := web.Validate(*flags.WebConfigFile); err != nil {
			return nil, fmt.Errorf("web config file %s: %w", *flags.WebConfigFile, err)
		}
	}
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		if len(ls) == 0 {
			return nil, errors.New("systemd socket activation: no socket was passed")
		}
		return ls, nil
	}
	if len(*flags.WebListenAddresses) == 0 {
		return nil, errors.New("no --web.listen-address")
	}
	var ls []net.Listener
	for _, addr := range *flags.WebListenAddresses {
		l, err := listenOne(addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func listenOne(addr string) (net.Listener, error) {
	if rest, ok := strings.CutPrefix(addr, "vsock://"); ok {
		_, port, err := net.SplitHostPort(rest)
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseUint(port, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad vsock port %q", port)
		}
		return vsock.Listen(uint32(p), nil)
	}
	return net.Listen("tcp", addr)
}

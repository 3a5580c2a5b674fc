#!/usr/bin/env bash
# Builds the release archives into .tarballs/ (`make release`), in the
# layout of the Prometheus projects' promu (which the module proxy does not
# serve here): umeeting_exporter-VERSION.OS-ARCH.tar.gz, each holding a
# folder of that name with the binary, README.md, LICENSE (if any), docs/,
# config.yml, the dashboards, the rule files and the systemd unit; then
# sha256sums.txt over the archives.
#
#   VERSION=1.2.0 LDFLAGS='-X ...' scripts/release.sh linux/amd64 windows/amd64 ...
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?VERSION is not set}" "${LDFLAGS:?LDFLAGS is not set}"
GO=${GO:-go}
out=.tarballs
rm -rf "$out"
mkdir -p "$out"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
for platform in "$@"; do
	os=${platform%/*} arch=${platform#*/}
	name=umeeting_exporter-$VERSION.$os-$arch
	dir=$staging/$name
	mkdir -p "$dir/dashboards" "$dir/alerts" "$dir/systemd"
	exe=umeeting_exporter
	if [ "$os" = windows ]; then exe=umeeting_exporter.exe; fi
	echo ">> building $name" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$dir/$exe" .
	cp README.md config.yml "$dir/"
	if [ -f LICENSE ]; then cp LICENSE "$dir/"; fi
	cp -r docs "$dir/docs"
	cp dashboards/*.json "$dir/dashboards/"
	cp alerts/*.rules.yml "$dir/alerts/"
	cp deploy/systemd/umeeting_exporter.service "$dir/systemd/"
	tar -C "$staging" --owner=0 --group=0 --sort=name -czf "$out/$name.tar.gz" "$name"
done
(cd "$out" && sha256sum ./*.tar.gz | sed 's| \./| |' >sha256sums.txt)
ls -l "$out" >&2

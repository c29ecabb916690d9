#!/usr/bin/env bash
# Fetches the chart library, uPlot, from the npm registry with npm itself and
# copies its minified browser build, its stylesheet and its license here.
# The files are committed, so `go build` needs no network; run this only to
# change the version, then update the sums below and in README.md.
#
#   bash dashboard/assets/update.sh            # the pinned version
#   UPLOT_VERSION=1.6.33 bash dashboard/assets/update.sh   # another one
#
# Needs: npm, tar, sha256sum.
set -euo pipefail
cd "$(dirname "$0")"

version="${UPLOT_VERSION:-1.6.32}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack downloads the published tarball and checks its integrity hash.
(cd "$work" && npm pack --silent "uplot@${version}" >/dev/null)
tar -xzf "$work/uplot-${version}.tgz" -C "$work"

cp "$work/package/dist/uPlot.iife.min.js" uPlot.iife.min.js
cp "$work/package/dist/uPlot.min.css" uPlot.min.css
cp "$work/package/LICENSE" LICENSE.uPlot

echo "uplot ${version}:"
(cd "$work" && sha256sum "uplot-${version}.tgz")
sha256sum uPlot.iife.min.js uPlot.min.css LICENSE.uPlot

# The sums of the committed files (uplot 1.6.32); a mismatch after an update
# of the same version means the published package changed: look before
# committing.
if [ "$version" = "1.6.32" ]; then
	sha256sum -c <<'SUMS'
19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f  uPlot.iife.min.js
df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04  uPlot.min.css
8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd  LICENSE.uPlot
SUMS
fi

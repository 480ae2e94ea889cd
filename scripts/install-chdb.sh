#!/usr/bin/env bash
# Installs the pinned libchdb.so (the ClickHouse engine as a shared library,
# shipped in the npm package @chdb/lib-linux-x64-gnu) into the user's cache,
# outside the repository, and verifies both the package and the library by
# sha256. Prints the library path. Does nothing when it is already there.
set -euo pipefail

version=26.5.3
tgz_sha256=b874e449710950da3abd7e20376f7bb3387d9e03adcc7082f022be18dfdf316a
lib_sha256=4330da79405733f7572f27c1442f46c03a08301f00859dce0368645731b1e1dc
url="https://registry.npmjs.org/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-${version}.tgz"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/correlator/chdb/${version}"
lib="$cache/libchdb.so"

if [ -f "$lib" ] && echo "$lib_sha256  $lib" | sha256sum -c --quiet - 2>/dev/null; then
	echo "$lib"
	exit 0
fi

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) ;;
*) echo "install-chdb: only linux x86_64 is packaged (@chdb/lib-linux-x64-gnu); set CORRELATOR_CHDB_LIB to a libchdb.so for this platform" >&2; exit 1 ;;
esac

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "install-chdb: downloading @chdb/lib-linux-x64-gnu@${version} (160 MB)" >&2
if ! curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$url"; then
	# Some networks only reach npm through its own client and proxy settings.
	(cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@${version}" >/dev/null && mv ./*.tgz pkg.tgz)
fi
echo "$tgz_sha256  $tmp/pkg.tgz" | sha256sum -c --quiet - || { echo "install-chdb: package checksum mismatch" >&2; exit 1; }
tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/libchdb.so
echo "$lib_sha256  $tmp/package/libchdb.so" | sha256sum -c --quiet - || { echo "install-chdb: libchdb.so checksum mismatch" >&2; exit 1; }
mv "$tmp/package/libchdb.so" "$lib"
echo "install-chdb: installed $lib" >&2
echo "$lib"

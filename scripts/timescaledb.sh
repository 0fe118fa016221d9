#!/usr/bin/env bash
# Makes TimescaleDB available to the local PostgreSQL servers (`make run`, the tests) and
# points the link $4 at the folder of the server programs that load it.
#
#   timescaledb.sh VERSION TARBALL CACHE LINK
#
# - Installed for the server's major version (a Debian package, an image): that server.
# - Otherwise built once from the vendored source TARBALL, with our fixes applied, into
#   CACHE/VERSION-FIXES-pgSERVER (FIXES: a digest of the patches; SERVER: the server's full
#   version, since its program is copied): a private copy of the server's tree (its
#   `postgres` program copied, everything else linked) with the extension added.
#   PostgreSQL finds its share and lib folders relative to its program, so that copy loads
#   the extension while the machine's own server, which every other checkout uses, stays
#   plain. No root needed but for missing Debian packages.
# - Neither: no link, and one line saying the ledger runs on plain PostgreSQL only.
set -euo pipefail
version=$1 tarball=$2 cache=$3 link=$4
major=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
bindir=$(pg_config --bindir) sharedir=$(pg_config --sharedir) pkglibdir=$(pg_config --pkglibdir)

if [[ -f $sharedir/extension/timescaledb.control && -f $pkglibdir/timescaledb.so ]]; then
  ln -sfn "$bindir" "$link"
  echo "TimescaleDB: installed for PostgreSQL $major, using it"
  exit 0
fi
server=$("$bindir/postgres" --version | sed -E 's/^postgres \(PostgreSQL\) ([0-9.]+).*/\1/')
# Our fixes to the source (scripts/timescaledb-patches/, each says why): a new set, a new build.
patches=("$(cd "$(dirname "$0")" && pwd)"/timescaledb-patches/*.patch)
fixes=$(cat "${patches[@]}" | sha256sum | cut -c1-8)
tree=$(realpath -m "$cache/$version-$fixes-pg$server")
if [[ -f $tree/.built ]]; then
  ln -sfn "$tree${bindir#/usr}" "$link"
  exit 0
fi
if [[ ! -f $tarball ]]; then
  rm -f "$link"
  echo "TimescaleDB: $tarball not found; the ledger runs on plain PostgreSQL only"
  exit 0
fi

# One build at a time per cache: checkouts sharing it wait, then find it built.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ -f $tree/.built ]]; then
  ln -sfn "$tree${bindir#/usr}" "$link"
  exit 0
fi
echo "TimescaleDB $version: building from $tarball for PostgreSQL $server (once)"
scripts/apt-ensure.sh cmake "postgresql-server-dev-$major" libssl-dev libkrb5-dev patch
(cd "$(dirname "$tarball")" && sha256sum --check --status --ignore-missing SHA256SUMS) \
  || { echo "TimescaleDB: $tarball does not match its SHA256SUMS" >&2; exit 1; }
staging=$tree.partial
rm -rf "$staging"
mkdir -p "$staging/src"
tar -xzf "$tarball" -C "$staging/src" --strip-components=1
(
  cd "$staging/src"
  for fix in "${patches[@]}"; do patch -p1 --quiet <"$fix"; done
  ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF \
    -DCMAKE_BUILD_TYPE=Release >"$staging/build.log" 2>&1
  make -C build -j"$(nproc)" >>"$staging/build.log" 2>&1
  make -C build install DESTDIR="$staging/dest" >>"$staging/build.log" 2>&1
) || { echo "TimescaleDB: build failed, see $staging/build.log" >&2; exit 1; }

# The private tree: the paths of pg_config's folders below $staging instead of /usr.
bin=$staging${bindir#/usr} share=$staging${sharedir#/usr} lib=$staging${pkglibdir#/usr}
mkdir -p "$bin" "$share/extension" "$lib"
cp "$bindir/postgres" "$bin/"  # a copy: PostgreSQL resolves a link to its own program
for f in "$bindir"/*; do [[ -e $bin/${f##*/} ]] || ln -s "$f" "$bin/"; done
for f in "$sharedir"/*; do [[ ${f##*/} == extension ]] || ln -s "$f" "$share/"; done
ln -s "$sharedir"/extension/* "$share/extension/"
ln -s "$pkglibdir"/* "$lib/"
cp "$staging/dest$sharedir"/extension/* "$share/extension/"
cp "$staging/dest$pkglibdir"/* "$lib/"
rm -rf "$staging/src" "$staging/dest"
chmod -R a+rX "$staging"  # the server runs as `postgres` when make runs as root
touch "$staging/.built"
rm -rf "$tree"
mv "$staging" "$tree"
ln -sfn "$tree${bindir#/usr}" "$link"
echo "TimescaleDB $version: built into $tree"

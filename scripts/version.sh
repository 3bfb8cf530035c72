#!/bin/sh
# The one version of a wsgate build, as PEP 440 spells it, from `git describe`:
# it goes into the binary (-X main.version) and into the Python package
# (python/wsgate/_version.py), so `pip`, `wsgate --version` and
# wsgate.__version__ all say the same thing.
#
#   tag v1.2.0                        -> 1.2.0
#   3 commits after v1.2.0            -> 1.2.0.post3+g1a2b3c4
#   no tag yet                        -> 0.0.0+g1a2b3c4
#   uncommitted changes               -> …+g1a2b3c4.dirty (1.2.0+dirty on the tag)
#   not a git checkout (an sdist)     -> the version python/wsgate/_version.py already holds
#
# With --write it also (re)writes python/wsgate/_version.py when that file
# does not hold this version yet (so an unchanged version rebuilds nothing).
set -eu
cd "$(dirname "$0")/.."
file=python/wsgate/_version.py
if ! desc=$(git describe --tags --long --always --dirty --match 'v[0-9]*' 2>/dev/null); then
	sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$file" 2>/dev/null || true
	exit 0
fi
dirty=
case $desc in *-dirty) dirty=1 desc=${desc%-dirty} ;; esac
case $desc in
v[0-9]*-*-g*)
	hash=${desc##*-}
	rest=${desc%-*}
	count=${rest##*-}
	tag=${rest%-*}
	tag=${tag#v}
	if [ "$count" = 0 ]; then
		version=$tag local=
	else
		version=$tag.post$count local=$hash
	fi
	;;
*)
	version=0.0.0 local=g$desc
	;;
esac
if [ -n "$dirty" ]; then
	local=${local:+$local.}dirty
fi
version=$version${local:++$local}
if [ "${1:-}" = --write ]; then
	line="__version__ = \"$version\""
	if ! grep -qxF "$line" "$file" 2>/dev/null; then
		printf '%s\n' "# Written by scripts/version.sh: the version the wsgate binary of this build has too." "$line" >"$file.tmp"
		mv "$file.tmp" "$file"
	fi
fi
echo "$version"

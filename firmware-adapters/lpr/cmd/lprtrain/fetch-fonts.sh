#!/bin/sh
# fetch-fonts.sh DIR: fetches the web fonts lprtrain draws plates with beside
# Debian's, from npm packages at pinned versions (fontsource; every one of
# these fonts is under the SIL Open Font License), into DIR/NAME/*.woff. npm
# checks each tarball against the integrity hash the registry publishes for
# that version (no hash is kept here; a version, once published, cannot be
# replaced on npm). Fonts already in DIR are kept. Narrow grotesques and highway-sign faces: US plates use such shapes
# (Barlow was drawn after California's plates and signs, Overpass after
# Highway Gothic), and many European plates DIN-like ones.
set -eu
dir=${1:?usage: fetch-fonts.sh DIR}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r pkg weights; do
	case $pkg in '' | '#'*) continue ;; esac
	name=${pkg#@fontsource/}
	name=${name%@*}
	[ -d "$dir/$name" ] && continue
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	tar xzf "$tmp"/fontsource-"$name"-*.tgz -C "$tmp"
	mkdir -p "$tmp/out"
	for w in $weights; do
		cp "$tmp/package/files/$name-latin-$w-normal.woff" "$tmp/out/"
	done
	mv "$tmp/out" "$dir/$name"
	rm -rf "$tmp/package" "$tmp"/*.tgz
done <<'LIST'
@fontsource/barlow@5.3.0 400 500 600 700
@fontsource/barlow-semi-condensed@5.3.0 400 500 600 700
@fontsource/barlow-condensed@5.3.0 400 500 600 700
@fontsource/overpass@5.3.0 400 600 700
@fontsource/oswald@5.3.0 400 500 600
@fontsource/league-gothic@5.3.0 400
@fontsource/archivo-narrow@5.3.0 400 600 700
@fontsource/pt-sans-narrow@5.3.0 400 700
@fontsource/fira-sans-condensed@5.3.0 400 600
@fontsource/ibm-plex-sans-condensed@5.3.0 400 600
@fontsource/saira-condensed@5.3.0 400 600
@fontsource/public-sans@5.3.0 400 700
@fontsource/antonio@5.3.0 400 700
@fontsource/fjalla-one@5.3.0 400
@fontsource/alumni-sans@5.3.0 500 700
@fontsource/ubuntu-condensed@5.3.0 400
@fontsource/teko@5.3.0 400 600
@fontsource/rajdhani@5.3.0 500 700
@fontsource/share-tech@5.3.0 400
LIST

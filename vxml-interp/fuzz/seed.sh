#!/usr/bin/env bash
# Seeds the fuzz corpora (corpus/<target>/, not committed) from the W3C conformance material and
# the crate's own test fixtures. Idempotent: files are named by the SHA-1 of their content, as
# libFuzzer names what it adds.
#
#   ./seed.sh [CONFORMANCE_DIR]     (default ../shared/conformance beside the repository)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=${1:-$here/../../../shared/conformance}
ir=$suite/vxml-ir
fixtures=$here/../tests/data

# add TARGET: stores stdin as one seed of TARGET.
add() {
    local dir=$here/corpus/$1 tmp
    mkdir -p "$dir"
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -s "$tmp" ]; then
        mv "$tmp" "$dir/$(sha1sum "$tmp" | cut -d' ' -f1)"
    else
        rm -f "$tmp"
    fi
}

# document: every converted IR document and every fixture (file names have no spaces).
seeds() { # seeds EXT...: the suite's and the fixtures' files with these extensions
    local ext
    for ext in "$@"; do
        find "$ir" "$suite/srgs" "$fixtures" -type f -name "*.$ext"
    done | sort
}

for f in $(seeds vxml); do
    add document <"$f"
done

# srgs_xml: IR grammars and the SRGS conformance grammars.
for f in $(seeds grxml); do
    add srgs_xml <"$f"
done

# Inline grammars of the IR documents (and of the fixtures), one per seed: XML ones to srgs_xml,
# ABNF ones (text starting #ABNF) to abnf.
inline=$(mktemp -d)
# shellcheck disable=SC2016 # a perl program, not a shell expansion
INLINE=$inline perl -0777 -ne 'while (/(<grammar\b[^>]*[^\/]>.*?<\/grammar>)/gs) {
    open(my $out, ">", sprintf("%s/%06d", $ENV{INLINE}, ++$n)) or die; print $out $1; close $out }
    ' $(seeds vxml)
for f in "$inline"/*; do
    if [ ! -f "$f" ]; then
        continue
    elif grep -q '#ABNF' "$f"; then
        sed -e '1s/^<grammar[^>]*>//' -e 's/<\/grammar>$//' -e 's/<!\[CDATA\[//; s/\]\]>//' "$f" | add abnf
    else
        add srgs_xml <"$f"
    fi
done
rm -rf "$inline"

# The grammar unit tests' sources: raw strings holding a <grammar> or an #ABNF document.
tests=$here/../src/grammar/tests.rs
extract() { # extract PATTERN TARGET: one seed per match of a perl regex's group 1 in $tests
    local dir
    dir=$(mktemp -d)
    DIR=$dir PAT=$1 perl -0777 -ne 'while (/$ENV{PAT}/gs) {
        open(my $out, ">", sprintf("%s/%06d", $ENV{DIR}, ++$n)) or die; print $out $1; close $out }
        ' "$tests"
    for f in "$dir"/*; do
        if [ -f "$f" ]; then
            add "$2" <"$f"
        fi
    done
    rm -rf "$dir"
}
extract 'r#"(<\?xml.*?|<grammar.*?)"#' srgs_xml
extract 'r#"(#ABNF.*?)"#' abnf
extract '[^#]"(#ABNF[^"]*)"' abnf

# abnf: the SRGS conformance grammars in ABNF form.
for f in $(seeds gram abnf); do
    add abnf <"$f"
done

# expression: every cond="..." and *expr="..." value of the IR documents, XML entities decoded.
grep -ohE '\b(cond|[a-z]*expr)="[^"]*"' "$ir"/*/*.vxml |
    sed -E 's/^[a-z]+="//; s/"$//' |
    sed -e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&apos;/'"'"'/g; s/&amp;/\&/g' |
    sort -u |
    while IFS= read -r expr; do
        printf '%s' "$expr" | add expression
    done

# session: each IR test's start document (manifest.tsv), then its other documents, grammars and
# scripts, separated by NUL bytes (the session target serves them to its fetches in turn).
tail -n +2 "$ir/manifest.tsv" | while IFS=$'\t' read -r id _ start _; do
    dir=$ir/$id
    if [ ! -f "$dir/$start" ]; then
        continue
    fi
    {
        cat "$dir/$start"
        for f in "$dir"/*.vxml "$dir"/*.grxml "$dir"/*.js; do
            if [ -f "$f" ] && [ "$f" != "$dir/$start" ]; then
                printf '\0'
                cat "$f"
            fi
        done
    } | add session
done

for t in document srgs_xml abnf expression session; do
    printf '%-11s %5d seeds\n' "$t" "$(find "$here/corpus/$t" -type f | wc -l)"
done

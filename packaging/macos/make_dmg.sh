#!/usr/bin/env bash
# The macOS disk image people double-click: dist/civdesk-<version>.dmg from dist/civdesk.app
# (`make app` on a Mac), with a link to /Applications to drag the app onto.
#
# Signing: ad hoc by default (Gatekeeper still warns on another Mac, but the bundle's
# signature is valid and Apple silicon runs it). For a real release set
#   CIVDESK_CODESIGN_IDENTITY  "Developer ID Application: Name (TEAMID)" (also read by
#                              build.spec, which then signs while freezing)
#   CIVDESK_NOTARY_PROFILE     a keychain profile made with `xcrun notarytool
#                              store-credentials`; the image is then notarised and stapled.
set -euo pipefail
cd "$(dirname "$0")/../.."

app=dist/civdesk.app
[ -d "$app" ] || { echo "No $app: run make app first" >&2; exit 1; }
version=$(python -c "import sys; sys.path.insert(0, 'src'); import civdesk; print(civdesk.__version__)")
identity=${CIVDESK_CODESIGN_IDENTITY:--}

if [ "$identity" = "-" ]; then
  codesign --force --deep --sign - "$app"
else
  # Notarisation wants the hardened runtime and a secure timestamp.
  codesign --force --deep --options runtime --timestamp --sign "$identity" \
    ${CIVDESK_ENTITLEMENTS:+--entitlements "$CIVDESK_ENTITLEMENTS"} "$app"
fi
codesign --verify --deep --strict "$app"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
dmg="dist/civdesk-$version.dmg"
rm -f "$dmg"
hdiutil create -volname "civdesk $version" -srcfolder "$staging" -fs HFS+ -format UDZO "$dmg"

if [ -n "${CIVDESK_NOTARY_PROFILE:-}" ]; then
  xcrun notarytool submit "$dmg" --keychain-profile "$CIVDESK_NOTARY_PROFILE" --wait
  xcrun stapler staple "$dmg"
fi
# The image opens and holds a runnable app: what a user does first.
mount=$(mktemp -d)
hdiutil attach -nobrowse -readonly -mountpoint "$mount" "$dmg" >/dev/null
"$mount/civdesk.app/Contents/MacOS/civdesk" --version
hdiutil detach "$mount" >/dev/null
echo "$dmg"

#!/usr/bin/env bash
# mkproxies.sh DIR: makes grid proxies with the real grid tools from the test
# PKI that `go run ./internal/pki/cmd/mkpki DIR` wrote (internal/pki; INTEROP.md
# section 2), so tests verify what grid-proxy-init and voms-proxy-fake make:
#   DIR/proxy.pem                      RFC 3820 proxy of the user (grid-proxy-init,
#                                      or openssl when grid-proxy-init is missing)
#   DIR/vomsproxy.pem                  VOMS proxy, FQAN /dteam/Role=NULL/Capability=NULL,
#                                      AC signed by the host credential (the "VOMS server")
#   DIR/vomsdir/dteam/localhost.lsc    vomsdir trusting that server for VO dteam
#   DIR/vomsproxy-forged.pem           VOMS proxy whose AC is signed by a self-made
#                                      "VOMS server" with the same DN (must be refused)
#   DIR/vomsproxy-wrongvo.pem          AC claiming /atlas from the dteam server (refused)
#                                      (the three only when voms-proxy-fake is installed)
# Never use these credentials for anything but tests.
set -euo pipefail
DIR=${1:?usage: mkproxies.sh DIR}
cd "$DIR"
[[ -f usercert.pem && -f userkey.pem && -f hostcert.pem && -d certificates ]] ||
  { echo "mkproxies: $DIR holds no test PKI (go run ./internal/pki/cmd/mkpki $DIR)" >&2; exit 2; }
export OPENSSL_CONF=/dev/null
q() { "$@" >/dev/null 2>&1 || { echo "mkproxies: failed: $*" >&2; "$@"; exit 1; }; }

if command -v grid-proxy-init >/dev/null 2>&1; then
  q grid-proxy-init -cert usercert.pem -key userkey.pem -certdir certificates -out proxy.pem -valid 12:00 -q
else
  # RFC 3820 proxy by hand: subject = user subject + CN=<serial>, signed by the user key.
  serial=$RANDOM$RANDOM
  q openssl req -newkey rsa:2048 -nodes -keyout proxykey.pem -out proxy.csr \
    -subj "/DC=org/DC=example/CN=Test User/CN=$serial"
  cat > proxy.ext <<X
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
proxyCertInfo=critical,language:id-ppl-inheritAll
X
  q openssl x509 -req -in proxy.csr -CA usercert.pem -CAkey userkey.pem -set_serial "$serial" \
    -days 1 -out proxycert.pem -extfile proxy.ext
  cat proxycert.pem proxykey.pem usercert.pem > proxy.pem
  rm -f proxy.csr proxy.ext proxycert.pem proxykey.pem
fi
chmod 600 proxy.pem

if command -v voms-proxy-fake >/dev/null 2>&1; then
  q voms-proxy-fake -cert usercert.pem -key userkey.pem -hostcert hostcert.pem -hostkey hostkey.pem \
    -voms dteam -fqan /dteam/Role=NULL/Capability=NULL -uri localhost:15000 -out vomsproxy.pem \
    -rfc -certdir certificates
  mkdir -p vomsdir/dteam
  printf '%s\n' "/DC=org/DC=example/CN=localhost" "/DC=org/DC=example/CN=Test CA" > vomsdir/dteam/localhost.lsc
  # A forger's "VOMS server": same DN as the trusted one, its own key, self-signed.
  q openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout forgedkey.pem -out forgedcert.pem \
    -subj "/DC=org/DC=example/CN=localhost" -addext "subjectKeyIdentifier=hash" \
    -addext "authorityKeyIdentifier=keyid:always" -addext "basicConstraints=critical,CA:FALSE"
  q voms-proxy-fake -cert usercert.pem -key userkey.pem -hostcert forgedcert.pem -hostkey forgedkey.pem \
    -voms dteam -fqan /dteam/Role=NULL/Capability=NULL -uri localhost:15000 -out vomsproxy-forged.pem \
    -rfc -certdir certificates
  q voms-proxy-fake -cert usercert.pem -key userkey.pem -hostcert hostcert.pem -hostkey hostkey.pem \
    -voms dteam -fqan /atlas/Role=production/Capability=NULL -uri localhost:15000 -out vomsproxy-wrongvo.pem \
    -rfc -certdir certificates
  rm -f forgedkey.pem forgedcert.pem
  chmod 600 vomsproxy-forged.pem vomsproxy-wrongvo.pem
fi

# SPDX-License-Identifier: MIT
# Sourced by tests/integration/lib.sh and bench/run: the one maker of test
# certificates.

# ef_test_certs DIR: a test CA (DIR/ca.pem, ca.key), a server certificate
# for 127.0.0.1 and localhost (server.pem, server.key) and a client
# certificate (client.pem, client.key), all EC P-256 for 2 days; openssl's
# output in DIR/openssl.log.  0, or 1 when openssl failed.
ef_test_certs() {
  local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  {
    openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
      -subj "/CN=enrichfarm test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req "${ec[@]}" -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/server.ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -out "$d/server.pem" -days 2 -extfile "$d/server.ext" &&
    openssl req "${ec[@]}" -keyout "$d/client.key" -out "$d/client.csr" -subj "/CN=enrichfarm worker" &&
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$d/client.ext" &&
    openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -out "$d/client.pem" -days 2 -extfile "$d/client.ext"
  } >"$d/openssl.log" 2>&1
}

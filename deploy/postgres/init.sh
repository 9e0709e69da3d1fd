#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (the official
# image runs /docker-entrypoint-initdb.d/*): one role and one database per
# service, each role owning only its database and unable to create others,
# so a compromised service reaches no other service's data. Passwords come
# from the environment (deploy/.env), never from this file.
set -eu
for svc in iam customer dealer monitoring securitysystem authzsync bff openfga; do
	var="DB_PASSWORD_$(echo "$svc" | tr a-z A-Z)"
	eval "pw=\${$var:?set $var in deploy/.env}"
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE "$svc" LOGIN NOCREATEDB NOCREATEROLE PASSWORD '$pw';
CREATE DATABASE "realguardio_$svc" OWNER "$svc";
REVOKE ALL ON DATABASE "realguardio_$svc" FROM PUBLIC;
SQL
done

// Verify JWT-SVIDs the way Node relying parties do, many cases per process.
//
// stdin:  {"ca_file": "/path/ca.pem", "cases": [{"id", "library", "issuer", "audience", "token",
//          "subject"?}]}
// stdout: [{"id", "ok", "reason", "claims"?}] in the same order.
//
// library:
//   "jose"          read {issuer}/.well-known/openid-configuration, then createRemoteJWKSet on its
//                   jwks_uri and jwtVerify with the expected issuer and audience.
//   "infisical"     Infisical's OIDC machine-identity login (relying-parties.md §6): axios without
//                   redirects and with a CA agent, only jwks_uri read from the document, a new
//                   jwks-rsa client per login, getSigningKey(kid), jsonwebtoken.verify with the
//                   bound issuer, then bound subject and bound audiences as picomatch globs.
//   "openid-client" openid-client's discovery() (which checks the document's issuer), then jose
//                   with the discovered jwks_uri, issuer and id_token_signing_alg_values_supported.
//
// The CA reaches global fetch through NODE_EXTRA_CA_CERTS (set by the caller); Infisical's path
// passes it explicitly, as Infisical does with its configured CA certificate.
import { readFileSync } from "node:fs";
import https from "node:https";

import axios from "axios";
import * as jose from "jose";
import jwt from "jsonwebtoken";
import { JwksClient } from "jwks-rsa";
import * as oidc from "openid-client";
import picomatch from "picomatch";

const DISCOVERY = "/.well-known/openid-configuration";

class Rejected extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

function joseReason(err) {
  if (err && err.code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return `${err.code}:${err.claim}`;
  if (err && err.code) return err.code;
  return `${err?.name ?? "Error"}:${err?.message ?? String(err)}`;
}

async function viaJose(c) {
  const url = c.issuer.replace(/\/$/, "") + DISCOVERY;
  const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Rejected(`discovery_status:${res.status}`);
  const doc = await res.json();
  const jwks = jose.createRemoteJWKSet(new URL(doc.jwks_uri));
  try {
    const { payload } = await jose.jwtVerify(c.token, jwks, {
      issuer: c.issuer,
      audience: c.audience,
    });
    return payload;
  } catch (err) {
    throw new Rejected(joseReason(err));
  }
}

function globMatch(value, policy) {
  return value === policy || picomatch.isMatch(value, policy);
}

async function viaInfisical(c, ca) {
  const discoveryUrl = c.issuer;
  const agent = new https.Agent({ ca, rejectUnauthorized: true });
  const useAgent = discoveryUrl.includes("https") ? agent : undefined;
  let doc;
  try {
    const res = await axios.get(`${discoveryUrl}${DISCOVERY}`, {
      httpsAgent: useAgent,
      maxRedirects: 0,
      timeout: 5000,
    });
    doc = res.data;
  } catch (err) {
    throw new Rejected(`discovery_document_fetch_failed:${err.message}`);
  }
  if (!doc || !doc.jwks_uri) throw new Rejected("missing_jwks_uri");
  const decoded = jwt.decode(c.token, { complete: true });
  if (!decoded) throw new Rejected("invalid_jwt");
  const client = new JwksClient({ jwksUri: doc.jwks_uri, requestAgent: useAgent });
  const kid = decoded.header.kid;
  if (!kid) throw new Rejected("no_kid_not_exercised");
  let key;
  try {
    key = await client.getSigningKey(kid);
  } catch (err) {
    if (err && err.name === "SigningKeyNotFoundError") throw new Rejected("signing_key_not_found");
    throw new Rejected(`signing_key_retrieval_failed:${err.message}`);
  }
  let claims;
  try {
    claims = jwt.verify(c.token, key.getPublicKey(), { issuer: c.issuer });
  } catch (err) {
    if (err instanceof jwt.JsonWebTokenError) {
      throw new Rejected(`jwt_verification_failed:${err.message}`);
    }
    throw err;
  }
  if (c.subject && !globMatch(claims.sub, c.subject)) throw new Rejected("subject_not_allowed");
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const allowed = c.audience
    .split(", ")
    .some((policy) => auds.some((aud) => typeof aud === "string" && globMatch(aud, policy)));
  if (!allowed) throw new Rejected("audience_not_allowed");
  return claims;
}

async function viaOpenidClient(c) {
  let config;
  try {
    config = await oidc.discovery(new URL(c.issuer), c.audience, undefined, undefined, {
      timeout: 5,
    });
  } catch (err) {
    throw new Rejected(`discovery:${err.code ?? err.name}:${err.message}`);
  }
  const meta = config.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  try {
    const { payload } = await jose.jwtVerify(c.token, jwks, {
      issuer: meta.issuer,
      audience: config.clientMetadata().client_id,
      algorithms: meta.id_token_signing_alg_values_supported,
    });
    return payload;
  } catch (err) {
    throw new Rejected(joseReason(err));
  }
}

const LIBRARIES = { jose: viaJose, infisical: viaInfisical, "openid-client": viaOpenidClient };

async function runCase(c, ca) {
  const fn = LIBRARIES[c.library];
  if (!fn) return { id: c.id, ok: false, reason: `unknown_library:${c.library}` };
  try {
    const claims = await fn(c, ca);
    return { id: c.id, ok: true, reason: "", claims };
  } catch (err) {
    if (err instanceof Rejected) return { id: c.id, ok: false, reason: err.reason };
    return { id: c.id, ok: false, reason: `unexpected:${err?.name}:${err?.message}` };
  }
}

const input = JSON.parse(readFileSync(0, "utf8"));
const ca = input.ca_file ? readFileSync(input.ca_file, "utf8") : undefined;
const results = [];
for (const c of input.cases) {
  results.push(await runCase(c, ca));
}
process.stdout.write(JSON.stringify(results));

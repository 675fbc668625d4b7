// One AWS SDK for JavaScript v3 command, described as JSON on stdin, answered as one JSON line on stdout.
//
// Request (stdin):
//   {"service": "s3" | "secretsmanager" | "iam" | "sts" | "sqs",
//    "operation": "GetObject",          // the SDK command name without "Command"
//    "params": {...},                   // the command input; {"$base64": "..."} becomes bytes
//    "body_file": "/path",              // optional: params.Body read from this file
//    "body_as": "stream" | "buffer",    // optional, default "stream" (a fs.ReadStream: S3 sends it
//                                       //   aws-chunked with a trailing checksum; a Buffer gets a
//                                       //   checksum header and a plain body)
//    "out_file": "/path"}               // optional: where to write a streamed response body
//
// Configuration comes from the standard environment, read by the SDK itself: AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION, AWS_MAX_ATTEMPTS and
// AWS_RETRY_MODE (unset: the SDK's defaults, standard mode with 3 attempts). S3 uses path-style
// addressing.
//
// Answer (stdout, exactly one line):
//   {"ok": true, "output": {...}, "http_status": 200, "attempts": 1, "request_id": ...}
//     output is the response minus $metadata; a streamed body (GetObject's Body) is replaced by
//     {"bytes": N, "sha256": "<hex>"}, byte arrays by {"$base64": "..."}.
//   {"ok": false, "code": "NoSuchKey", "message": ..., "http_status": 404, "attempts": 1,
//    "fault": "client", "request_id": ...}
// Exit status: 0 ok, 1 the call failed (service or network error), 2 the request itself was bad
// (unknown service or operation, unreadable JSON or body_file): then "harness_error": true.

import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, readFileSync, statSync } from "node:fs";

const PACKAGES = {
  s3: ["@aws-sdk/client-s3", "S3Client"],
  secretsmanager: ["@aws-sdk/client-secrets-manager", "SecretsManagerClient"],
  iam: ["@aws-sdk/client-iam", "IAMClient"],
  sts: ["@aws-sdk/client-sts", "STSClient"],
  sqs: ["@aws-sdk/client-sqs", "SQSClient"],
};

// Everything the SDK (or anything else) might print goes to stderr: stdout is the answer line only.
for (const name of ["log", "info", "warn", "debug", "trace"]) {
  console[name] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

let answered = false;
function answer(result, code) {
  if (answered) return;
  answered = true;
  let line;
  try {
    line = JSON.stringify(result);
  } catch (err) {
    line = JSON.stringify({ ok: false, harness_error: true, code: "HarnessError",
                            message: `could not serialize the result: ${err && err.message}` });
    code = 2;
  }
  process.stdout.write(line + "\n", () => process.exit(code));
}

class HarnessError extends Error {}

function harnessFailure(err) {
  return { ok: false, harness_error: true, code: "HarnessError", message: String(err && err.message || err) };
}

process.on("uncaughtException", (err) => answer(harnessFailure(err), 2));
process.on("unhandledRejection", (err) => answer(harnessFailure(err), 2));

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (c) => chunks.push(c));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

// {"$base64": "..."} in params -> Uint8Array (SecretBinary, MessageBody attributes, ...).
function decodeParams(value) {
  if (Array.isArray(value)) return value.map(decodeParams);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$base64") return new Uint8Array(Buffer.from(value.$base64, "base64"));
    return Object.fromEntries(keys.map((k) => [k, decodeParams(value[k])]));
  }
  return value;
}

function isStream(value) {
  return value && typeof value === "object" &&
    (typeof value.pipe === "function" || typeof value.getReader === "function" ||
     typeof value.transformToByteArray === "function");
}

async function digestStream(body, outFile) {
  const hash = createHash("sha256");
  let bytes = 0;
  const out = outFile ? createWriteStream(outFile) : null;
  const source = typeof body.getReader === "function" && typeof body[Symbol.asyncIterator] !== "function"
    ? (async function* () { const r = body.getReader(); for (;;) { const { done, value } = await r.read(); if (done) return; yield value; } })()
    : body;
  for await (const chunk of source) {
    const buf = Buffer.from(chunk);
    hash.update(buf);
    bytes += buf.length;
    if (out && !out.write(buf)) await new Promise((resolve) => out.once("drain", resolve));
  }
  if (out) await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  return { bytes, sha256: hash.digest("hex") };
}

// The response as JSON: streams digested, byte arrays base64, Dates ISO (by JSON.stringify).
async function plain(value, outFile) {
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString("base64") };
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "bigint") return value.toString();
  if (isStream(value)) return digestStream(value, outFile);
  if (Array.isArray(value)) return Promise.all(value.map((v) => plain(v, outFile)));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "$metadata" || v === undefined) continue;
      out[k] = await plain(v, outFile);
    }
    return out;
  }
  return value;
}

function errorCode(err) {
  if (err.Code) return err.Code;
  if (err.name && err.name !== "Error") return err.name;
  return err.code || err.name || "Error"; // network errors: ECONNREFUSED, ECONNRESET, ...
}

async function main() {
  let request;
  try {
    request = JSON.parse(await readStdin());
  } catch (err) {
    throw new HarnessError(`stdin is not one JSON request: ${err.message}`);
  }
  const { service, operation } = request;
  if (!PACKAGES[service]) throw new HarnessError(`unknown service ${JSON.stringify(service)}`);
  const [pkg, clientName] = PACKAGES[service];
  const mod = await import(pkg);
  const Command = mod[`${operation}Command`];
  if (typeof Command !== "function") throw new HarnessError(`${pkg} has no ${operation}Command`);

  const params = decodeParams(request.params || {});
  if (request.body_file) {
    const as = request.body_as || "stream";
    try {
      if (as === "stream") {
        if (!statSync(request.body_file).isFile()) throw new Error(`${request.body_file} is not a file`);
        params.Body = createReadStream(request.body_file);
      } else if (as === "buffer") {
        params.Body = readFileSync(request.body_file);
      } else {
        throw new Error(`body_as must be "stream" or "buffer", not ${JSON.stringify(as)}`);
      }
    } catch (err) {
      throw new HarnessError(`body_file: ${err.message}`);
    }
  }

  const config = {};
  if (service === "s3") config.forcePathStyle = true;
  const client = new mod[clientName](config);
  try {
    let response;
    try {
      response = await client.send(new Command(params));
    } catch (err) {
      const meta = err && err.$metadata || {};
      answer({
        ok: false,
        code: errorCode(err || {}),
        message: String(err && err.message || err),
        http_status: meta.httpStatusCode ?? null,
        attempts: meta.attempts ?? null,
        fault: err && err.$fault || null,
        request_id: meta.requestId ?? null,
      }, 1);
      return;
    }
    const meta = response.$metadata || {};
    let output;
    try {
      output = await plain(response, request.out_file);
    } catch (err) {  // the connection broke while the body streamed in
      answer({
        ok: false,
        code: errorCode(err || {}),
        message: `reading the response body: ${err && err.message || err}`,
        http_status: meta.httpStatusCode ?? null,
        attempts: meta.attempts ?? null,
        fault: null,
        request_id: meta.requestId ?? null,
      }, 1);
      return;
    }
    answer({
      ok: true,
      output,
      http_status: meta.httpStatusCode ?? null,
      attempts: meta.attempts ?? null,
      request_id: meta.requestId ?? null,
    }, 0);
  } finally {
    client.destroy();
  }
}

main().catch((err) => answer(harnessFailure(err), 2));

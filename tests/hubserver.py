#!/usr/bin/env python3
"""hubserver.py - a loopback stand-in for the Hugging Face hub, for tests.

Serves one model directory as repository ORG/NAME at one commit, speaking the
two endpoints the downloader uses:

  GET /api/models/ORG/NAME/revision/REV?blobs=true   file list + commit
  GET /ORG/NAME/resolve/REV/FILE                     the file (LFS files are
      redirected to /lfs/SHA256 like the hub's CDN), Range requests honoured

Files ending in .safetensors, .model or .bin are LFS files. The file list also
holds a pytorch_model.bin, a README.md and a .gitattributes that the client
must not fetch. Switches simulate failures: --drop FILE (the first full
transfer of FILE stops half-way, the connection closed), --stall FILE (the
same, the connection left open and silent), --bare-listing (the
file list gives names only), --corrupt FILE (one
byte of FILE flipped, the file list unchanged), --token TOK (401 without
"Authorization: Bearer TOK"), --lfs-host HOST (LFS redirects name another
host, as the hub's CDN does), --throttle FILE:BYTES_PER_S. Every request is
appended to --log as "METHOD PATH range=RANGE auth=yes|no". Binds 127.0.0.1
on a free port, written to --port-file; exits after --lifetime seconds.
Python 3 standard library only.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".model", ".bin")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, root, repo_id, commit, corrupt):
        self.id = repo_id
        self.commit = commit
        self.files = {}  # name -> dict(data, sha256, blob_id, lfs)
        names = sorted(os.listdir(root))
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.add(name, f.read())
        # Extra files a real MusicGen repository has and the client must skip.
        self.add("pytorch_model.bin", b"\x80\x02not really a pickle" * 64)
        self.add("README.md", b"# test model\n")
        self.add(".gitattributes", b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
        for name in corrupt:
            f = self.files[name]
            data = bytearray(f["data"])
            data[len(data) // 2] ^= 0x01
            f["served"] = bytes(data)

    def add(self, name, data):
        lfs = name.endswith(LFS_SUFFIXES)
        sha = hashlib.sha256(data).hexdigest()
        if lfs:
            pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                       % (sha, len(data))).encode()
            blob_id = git_blob_id(pointer)
        else:
            pointer = None
            blob_id = git_blob_id(data)
        self.files[name] = {"data": data, "served": data, "sha256": sha, "blob_id": blob_id,
                            "lfs": lfs, "pointer": pointer}

    def listing(self, bare):
        sib = []
        for name, f in self.files.items():
            if bare:  # what a listing without ?blobs=true holds
                sib.append({"rfilename": name})
                continue
            s = {"rfilename": name, "size": len(f["data"]), "blobId": f["blob_id"]}
            if f["lfs"]:
                s["lfs"] = {"sha256": f["sha256"], "size": len(f["data"]),
                            "pointerSize": len(f["pointer"])}
            sib.append(s)
        return {"_id": "0" * 24, "id": self.id, "modelId": self.id, "sha": self.commit,
                "private": False, "siblings": sib}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (as the tests make it do) is no error here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"

    def log_message(self, fmt, *args):  # quiet on stderr; requests go to --log
        pass

    def log_request_line(self):
        opts = self.server.opts
        if opts.log:
            auth = "yes" if self.headers.get("Authorization") else "no"
            with self.server.lock, open(opts.log, "a") as f:
                f.write("%s %s range=%s auth=%s\n" % (self.command, self.path,
                                                     self.headers.get("Range", "-"), auth))

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self, code, message):
        self.send_json(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def authorized(self):
        tok = self.server.opts.token
        if not tok:
            return True
        if self.headers.get("Authorization") == "Bearer " + tok:
            return True
        self.send_json(401, {"error": "Invalid username or password."},
                       {"X-Error-Message": "Invalid username or password."})
        return False

    def revision_ok(self, rev):
        return rev in ("main", self.server.repo.commit)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_line()
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        repo = self.server.repo
        api = "/api/models/%s/revision/" % repo.id
        if path.startswith("/api/models/"):
            if not self.authorized():
                return
            if not path.startswith(api):
                return self.not_found("RepoNotFound", "Repository not found")
            rev = path[len(api):]
            if not self.revision_ok(rev):
                return self.not_found("RevisionNotFound", "Invalid rev id: %s" % rev)
            return self.send_json(200, repo.listing(self.server.opts.bare_listing))
        if path.startswith("/lfs/"):
            sha = path[len("/lfs/"):]
            for name, f in repo.files.items():
                if f["lfs"] and f["sha256"] == sha:
                    return self.send_file(name, f, {"ETag": '"%s"' % sha})
            return self.not_found("EntryNotFound", "no such LFS object")
        parts = path.lstrip("/").split("/", 4)
        if len(parts) < 5 or parts[2] != "resolve":
            return self.not_found("RepoNotFound", "Repository not found")
        if not self.authorized():
            return
        if "%s/%s" % (parts[0], parts[1]) != repo.id:
            return self.not_found("RepoNotFound", "Repository not found")
        rev, name = parts[3], parts[4]
        if not self.revision_ok(rev):
            return self.not_found("RevisionNotFound", "Invalid rev id: %s" % rev)
        f = repo.files.get(name)
        if f is None:
            return self.not_found("EntryNotFound", "%s does not exist on %s" % (name, rev))
        common = {"X-Repo-Commit": repo.commit}
        if f["lfs"]:
            self.send_response(302)
            host = self.server.opts.lfs_host
            prefix = "http://%s:%d" % (host, self.server.server_address[1]) if host else ""
            self.send_header("Location", "%s/lfs/%s" % (prefix, f["sha256"]))
            self.send_header("ETag", '"%s"' % f["blob_id"])
            self.send_header("X-Linked-Etag", '"%s"' % f["sha256"])
            self.send_header("X-Linked-Size", str(len(f["data"])))
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        common["ETag"] = '"%s"' % f["blob_id"]
        self.send_file(name, f, common)

    def send_file(self, name, f, headers):
        data = f["served"]
        opts = self.server.opts
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        body = data[start:]
        with self.server.lock:
            drop = name in self.server.drop_pending and start == 0
            if drop:
                self.server.drop_pending.discard(name)
            stall = name in self.server.stall_pending and start == 0
            if stall:
                self.server.stall_pending.discard(name)
        if stall:  # half the file, then silence with the connection open
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            time.sleep(opts.lifetime)
            return
        if drop:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        rate = opts.throttle_rate.get(name)
        if rate:
            step = max(1, rate // 20)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(step / rate)
        else:
            self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="the model directory to serve")
    ap.add_argument("--repo", default="test-org/tiny-musicgen")
    ap.add_argument("--commit", default=None, help="40 hex digits (default: derived from --repo)")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--token")
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--corrupt", action="append", default=[])
    ap.add_argument("--stall", action="append", default=[])
    ap.add_argument("--throttle", action="append", default=[], help="FILE:BYTES_PER_SECOND")
    ap.add_argument("--bare-listing", action="store_true",
                    help="file list with names only: no sizes, blob ids or LFS hashes")
    ap.add_argument("--lfs-host", help="redirect LFS files to http://HOST:PORT/lfs/ (another host name)")
    ap.add_argument("--lifetime", type=float, default=300.0)
    opts = ap.parse_args()
    opts.throttle_rate = {}
    for t in opts.throttle:
        name, rate = t.rsplit(":", 1)
        opts.throttle_rate[name] = int(rate)
    commit = opts.commit or hashlib.sha1(("commit of " + opts.repo).encode()).hexdigest()

    server = Server(("127.0.0.1", 0), Handler)
    server.opts = opts
    server.lock = threading.Lock()
    server.repo = Repo(opts.root, opts.repo, commit, opts.corrupt)
    server.drop_pending = set(opts.drop)
    server.stall_pending = set(opts.stall)
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, opts.port_file)
    timer = threading.Timer(opts.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

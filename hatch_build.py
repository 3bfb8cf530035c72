"""hatchling hooks for the wsgate distribution (pyproject.toml).

* The version is scripts/version.sh's (git describe, or the _version.py an
  sdist carries), written into python/wsgate/_version.py, which the binary
  embeds and the wheel ships: one version for both.
* A wheel gets the static wsgate binary, built here with ``go build`` for
  Linux and the architecture WSGATE_GOARCH names (amd64, the default on an
  x86_64 machine, or arm64: Go cross-compiles, there is no cgo), installed
  as a script into the environment's bin/, and the platform tag that says so.
"""

import os
import platform
import shutil
import subprocess
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

# Go's name for an architecture -> the wheel platform tags of a static Linux binary.
PLATFORM_TAGS = {
    "amd64": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "arm64": "manylinux_2_17_aarch64.manylinux2014_aarch64",
}
HOST_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
VERSION_PACKAGE = "github.com/wsgate/wsgate/internal/version"


def project_version(root):
    out = subprocess.run(["sh", os.path.join(root, "scripts", "version.sh"), "--write"],
                         check=True, capture_output=True, text=True).stdout.strip()
    if not out:
        raise RuntimeError("scripts/version.sh found no version: build from a git checkout or from the sdist")
    return out


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        metadata["version"] = project_version(self.root)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name != "wheel" or version != "standard":
            return
        goarch = os.environ.get("WSGATE_GOARCH") or HOST_GOARCH.get(platform.machine().lower(), "")
        if goarch not in PLATFORM_TAGS:
            raise RuntimeError("wsgate wheels are built for Linux on %s; WSGATE_GOARCH is %r"
                               % (" or ".join(sorted(PLATFORM_TAGS)), goarch))
        go = os.environ.get("GO") or shutil.which("go")
        if not go:
            raise RuntimeError("building wsgate from source needs Go (go.mod names the version) on PATH; "
                               "on Linux x86_64 and aarch64, pip installs a prebuilt wheel instead (docs/install.md)")
        self._tmp = tempfile.mkdtemp(prefix="wsgate-wheel-")
        binary = os.path.join(self._tmp, "wsgate")
        env = dict(os.environ, CGO_ENABLED="0", GOOS="linux", GOARCH=goarch)
        ldflags = "-s -w -X %s.stamped=%s" % (VERSION_PACKAGE, self.metadata.version)
        subprocess.run([go, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", binary,
                        "./cmd/wsgate"], cwd=self.root, env=env, check=True)
        build_data["shared_scripts"][binary] = "wsgate"
        build_data["pure_python"] = False
        build_data["tag"] = "py3-none-" + PLATFORM_TAGS[goarch]

    def finalize(self, version, build_data, artifact_path):
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

#!/usr/bin/env python3
"""Pin a released image digest everywhere revwallet is deployed from.

Called by .github/workflows/release.yml after the image is pushed, scanned and signed; the resulting diff
becomes the "deploy: pin vX.Y.Z" pull request. It edits, in place and keeping comments and layout:

- deploy/k8s/overlays/*/kustomization.yaml: the `images:` entry for revwallet gets `newName: <image>` and
  `digest: sha256:...` (any `newTag` is dropped: kustomize would otherwise render `name:tag@digest`).
  Only entries that deploy a registry image are touched (already pinned by digest, or naming a registry
  path); an overlay running a locally built image (the Kind overlay's `revwallet` + `newTag`) is left alone;
- deploy/terraform/environments/*.tfvars: `image = "<image>@sha256:..."` where the file sets `image`, and
  `image_digest = "sha256:..."` where it sets `image_digest` (the root module deploys from its own ECR
  repository, into which terraform.yml copies the signed image by digest before applying). A file that sets
  neither gets an `image_digest` line appended.

Deploys are by digest, never by a mutable tag. Exit status 1 when nothing could be pinned, so a layout change
that silently stopped the pinning does not go unnoticed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# image = "..." / image_digest = "..." in tfvars (HCL): keep what surrounds the value (alignment, comments).
TFVARS_IMAGE_RE = re.compile(r'^(?P<lead>[ \t]*image[ \t]*=[ \t]*)"[^"\n]*"(?P<tail>.*)$', re.MULTILINE)
TFVARS_DIGEST_RE = re.compile(r'^(?P<lead>[ \t]*image_digest[ \t]*=[ \t]*)"[^"\n]*"(?P<tail>.*)$', re.MULTILINE)


def image_matches(ref: str, image: str, name: str) -> bool:
    """True when a kustomize image name (or newName) refers to revwallet's image."""
    ref = ref.strip().strip("'\"")
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:  # drop a tag, keep a registry port
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
        last = last.split(":", 1)[0]
    return ref == image or last == name


def pin_kustomization(text: str, image: str, digest: str, name: str) -> tuple[str, int]:
    """Return (new text, number of image entries pinned) for one kustomization.yaml."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pinned = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not re.match(r"^images:\s*(#.*)?$", line.rstrip("\n")):
            continue
        # The images block: every following line that is indented, a list item, blank, or a comment.
        block: list[str] = []
        while i < len(lines) and (
            lines[i].startswith((" ", "\t", "-", "#")) or not lines[i].strip()
        ):
            block.append(lines[i])
            i += 1
        # Split the block into list items at "- " lines (same indentation as the first item).
        items: list[list[str]] = []
        prefix: list[str] = []
        item_indent = None
        for b in block:
            m = re.match(r"^(\s*)- ", b)
            if m and (item_indent is None or len(m.group(1)) == item_indent):
                item_indent = len(m.group(1))
                items.append([b])
            elif items:
                items[-1].append(b)
            else:
                prefix.append(b)
        out.extend(prefix)
        for item in items:
            new_item, did = pin_item(item, image, digest, name, item_indent or 0)
            pinned += did
            out.extend(new_item)
    return "".join(out), pinned


def pin_item(item: list[str], image: str, digest: str, name: str, indent: int) -> tuple[list[str], int]:
    """Rewrite one `- name: ...` entry of kustomize's images list if it is revwallet's."""
    fields: dict[str, str] = {}
    for line in item:
        m = re.match(r"^\s*(?:- )?(name|newName|newTag|digest)\s*:\s*(\S+)", line)
        if m:
            fields[m.group(1)] = m.group(2)
    if "name" not in fields:
        return item, 0
    if not (image_matches(fields["name"], image, name) or image_matches(fields.get("newName", ""), image, name)):
        return item, 0
    # Only entries that deploy a registry image: one already pinned by digest, or one naming a registry path.
    # An overlay that runs a locally built image (kind: `name: revwallet`, `newTag: dev`) must keep testing
    # the code it was built from, so it is left alone.
    registry_ref = "/" in fields.get("newName", "") or "/" in fields["name"]
    if "digest" not in fields and not registry_ref:
        return item, 0
    key_indent = " " * (indent + 2)
    kept: list[str] = []
    for line in item:
        # Drop the old newName/newTag/digest lines (the list item may start on one of them).
        if re.match(r"^\s*(- )?(newName|newTag|digest)\s*:", line):
            continue
        kept.append(line)
    # If the dropped line carried the list dash ("- newTag: x" first), move the dash to the first kept line.
    if not re.match(r"^\s*- ", kept[0]):
        kept[0] = " " * indent + "- " + kept[0].lstrip()
    # Insert right after the name line, so trailing comments or blank lines stay where they were.
    at = next(n for n, line in enumerate(kept) if re.match(r"^\s*(?:- )?name\s*:", line)) + 1
    kept[at:at] = [f"{key_indent}newName: {image}\n", f"{key_indent}digest: {digest}\n"]
    if not kept[at - 1].endswith("\n"):
        kept[at - 1] += "\n"
    return kept, 1


def pin_tfvars(text: str, image: str, digest: str) -> tuple[str, int]:
    """Return (new text, replacements) for one .tfvars file."""
    text, n_image = TFVARS_IMAGE_RE.subn(lambda m: f'{m.group("lead")}"{image}@{digest}"{m.group("tail")}', text)
    text, n_digest = TFVARS_DIGEST_RE.subn(lambda m: f'{m.group("lead")}"{digest}"{m.group("tail")}', text)
    if n_image + n_digest == 0:
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n# The released image, by digest (set by the release workflow's pin pull request; never a tag).\n"
                 f'image_digest = "{digest}"\n')
        return text, 1
    return text, n_image + n_digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="image repository, <registry host>/<owner>/revwallet (lower case, no tag)")
    parser.add_argument("--digest", required=True, help="sha256:<64 hex> of the pushed (multi-arch) image")
    parser.add_argument("--name", default="revwallet", help="image name used in the overlays (default: revwallet)")
    parser.add_argument("--root", default=".", type=Path, help="repository root")
    args = parser.parse_args(argv)

    if not DIGEST_RE.match(args.digest):
        print(f"pin_image_digest: not a sha256 digest: {args.digest!r}", file=sys.stderr)
        return 2
    if "@" in args.image or not re.match(r"^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*$", args.image):
        print(f"pin_image_digest: --image must be a lower-case repository without tag or digest: {args.image!r}",
              file=sys.stderr)
        return 2

    total = 0
    root: Path = args.root
    for path in sorted(root.glob("deploy/k8s/overlays/*/kustomization.yaml")):
        text = path.read_text()
        new, n = pin_kustomization(text, args.image, args.digest, args.name)
        if n:
            path.write_text(new)
        print(f"{path.relative_to(root)}: {n} image entr{'y' if n == 1 else 'ies'} pinned")
        total += n
    for path in sorted(root.glob("deploy/terraform/environments/*.tfvars")):
        text = path.read_text()
        new, n = pin_tfvars(text, args.image, args.digest)
        if n:
            path.write_text(new)
        print(f"{path.relative_to(root)}: {n} image variable{'' if n == 1 else 's'} pinned")
        total += n
    if total == 0:
        print("pin_image_digest: found no revwallet image entry to pin (layout changed?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

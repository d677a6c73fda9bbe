// Command c2sp_check checks the provenance log's checkpoints and proofs with Go's own
// transparency-log packages, the implementation the C2SP formats come from:
//
//   - golang.org/x/mod/sumdb/note: the verifier key (note.NewVerifier) and the signed note
//     (note.Open), what sumdb clients and witnesses run;
//   - golang.org/x/mod/sumdb/tlog: the RFC 6962/9162 inclusion proof (tlog.CheckRecord, the
//     leaf hashed by tlog.RecordHash) and the consistency proof (tlog.CheckTree);
//   - the C2SP tlog-checkpoint body (origin, decimal tree size, base64 root, optional
//     extension lines), read here: x/mod's tlog.ParseTree reads only the go.sum database's
//     own origin line.
//
// Built from Debian's golang-go and golang-golang-x-mod-dev in GOPATH mode (no module proxy;
// twi_testkit::tools::c2sp_check builds it). Input on stdin:
//
//	{"vkey": "...", "checkpoint": "note", "proof": {"statement": "hex", "index": N,
//	 "tree_size": N, "inclusion_proof": ["hex", ...]},
//	 "consistency": {"old_checkpoint": "note", "consistency_proof": ["hex", ...]},
//	 "must_fail_notes": [{"name": "...", "note": "..."}]}
//
// Prints one line per check ("ok   NAME" or "FAIL NAME: why") and exits 0 only if all hold.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type input struct {
	Vkey       string `json:"vkey"`
	Checkpoint string `json:"checkpoint"`
	Proof      *struct {
		Statement      string   `json:"statement"`
		Index          int64    `json:"index"`
		TreeSize       int64    `json:"tree_size"`
		InclusionProof []string `json:"inclusion_proof"`
	} `json:"proof"`
	Consistency *struct {
		OldCheckpoint    string   `json:"old_checkpoint"`
		ConsistencyProof []string `json:"consistency_proof"`
	} `json:"consistency"`
	MustFailNotes []struct {
		Name string `json:"name"`
		Note string `json:"note"`
	} `json:"must_fail_notes"`
}

type checkpoint struct {
	size int64
	root tlog.Hash
}

var failed bool

func check(name string, err error) {
	if err == nil {
		fmt.Println("ok   " + name)
		return
	}
	fmt.Printf("FAIL %s: %v\n", name, err)
	failed = true
}

// open verifies msg under the one known key and reads its text as a C2SP checkpoint whose
// origin is the key's name.
func open(msg string, verifier note.Verifier) (checkpoint, error) {
	n, err := note.Open([]byte(msg), note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, err
	}
	return parseCheckpoint(n.Text, verifier.Name())
}

func parseCheckpoint(text, origin string) (checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, errors.New("malformed checkpoint: fewer than three lines, or no final newline")
	}
	for _, line := range lines[:len(lines)-1] {
		if line == "" {
			return checkpoint{}, errors.New("malformed checkpoint: an empty line")
		}
	}
	if lines[0] != origin {
		return checkpoint{}, fmt.Errorf("checkpoint origin %q is not the key's name %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("malformed tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("the root is not base64 of %d bytes", tlog.HashSize)
	}
	var hash tlog.Hash
	copy(hash[:], root)
	return checkpoint{size, hash}, nil
}

func hashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, h := range list {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is not %d bytes of hex", i, tlog.HashSize)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Println("FAIL input: ", err)
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(in.Vkey))
	check("verifier key (note.NewVerifier)", err)
	if err != nil {
		os.Exit(1)
	}
	now, err := open(in.Checkpoint, verifier)
	check("checkpoint verifies (note.Open, tlog-checkpoint body)", err)
	if err != nil {
		os.Exit(1)
	}
	if in.Proof != nil {
		inclusion(in.Proof.Statement, in.Proof.Index, in.Proof.TreeSize, in.Proof.InclusionProof, now)
	}
	if c := in.Consistency; c != nil {
		old, err := open(c.OldCheckpoint, verifier)
		check("older checkpoint verifies", err)
		if err == nil {
			consistency(old, now, c.ConsistencyProof)
		}
	}
	for _, c := range in.MustFailNotes {
		_, err := open(c.Note, verifier)
		if err == nil {
			check("refused note: "+c.Name, errors.New("accepted"))
		} else {
			check("refused note: "+c.Name, nil)
			fmt.Printf("     (%v)\n", err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func inclusion(statement string, index, size int64, proof []string, now checkpoint) {
	if size != now.size {
		check("proof is against the checkpoint's size", fmt.Errorf("%d != %d", size, now.size))
		return
	}
	leaf, err := hex.DecodeString(statement)
	if err != nil {
		check("record included (tlog.CheckRecord)", err)
		return
	}
	path, err := hashes(proof)
	if err == nil {
		err = tlog.CheckRecord(path, now.size, now.root, index, tlog.RecordHash(leaf))
	}
	check("record included (tlog.CheckRecord)", err)
}

func consistency(old, now checkpoint, proof []string) {
	path, err := hashes(proof)
	if err == nil {
		err = tlog.CheckTree(path, now.size, now.root, old.size, old.root)
	}
	check("log grew append-only (tlog.CheckTree)", err)
}

package secretbox

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The hard-link path is what runs on ordinary filesystems; these cover the
// fallback for filesystems without hard links, which tests cannot summon.

func TestCreateExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	key := bytes.Repeat([]byte{1}, KeySize)
	require.NoError(t, createExclusive(path, key))
	if runtime.GOOS != "windows" {
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	err := createExclusive(path, bytes.Repeat([]byte{2}, KeySize))
	require.ErrorIs(t, err, fs.ErrExist)
	got, err := readKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, key, got, "the first key survives")
}

func TestReadKeyFileWaitsForWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	key := bytes.Repeat([]byte{3}, KeySize)
	go func() {
		time.Sleep(60 * time.Millisecond)
		_ = os.WriteFile(path, []byte(FormatKey(key)), 0o600)
	}()
	got, err := readKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, key, got)
}

func TestReadKeyFileEmptyGivesUp(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err := readKeyFile(path)
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, "empty")
}

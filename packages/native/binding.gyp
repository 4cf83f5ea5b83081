{
  "targets": [
    {
      "target_name": "ferry_native",
      "sources": [
        "cc/addon.cc",
        "cc/errors.cc",
        "cc/seqpacket.cc",
        "cc/vm-read.cc",
        "cc/page-hash.cc",
        "cc/file-gather.cc",
        "cc/pagemap.cc",
        "cc/pidfd.cc",
        "cc/netns-socket.cc",
        "cc/tcp-repair.cc",
        "cc/memcpy-bench.cc",
        "cc/netns.cc",
        "cc/sockets.cc",
        "cc/userfaultfd.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}

/**
 * Local sockets and fds for the page paths (docs/design/crash-safety.md section 4): private network namespaces and
 * sockets made in them, unix listeners in 0700 directories, TCP pairs whose kernel byte counters outlive their user,
 * fds taken from another process (pidfd_getfd), and a socket driver that can peek and carry fds. The primitives are
 * @ferry/native's; migrate takes them from here, so that only core reaches into the native addon. Nothing here
 * listens where another host could reach it. The userfaultfd calls serve ferry's own lazy-pages handler.
 */
export {
  FdHandle,
  StreamSocket,
  acceptSocket,
  connectSocket,
  createNetns,
  createSocket,
  listenUnix,
  pidfdGetfd,
  pidfdOpen,
  pidfdSendSignal,
  socketInNetns,
  socketName,
  streamSocketPair,
  tcpCounters,
  tcpLoopbackPair,
  Userfaultfd,
  pollUffds,
  type UffdMessage,
  type UffdResult,
  type SocketFamily,
  type StreamChunk,
  type StreamReadOptions,
  type TcpCounters,
} from '@ferry/native';

package io.samsa.compat;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A samsa-server process on a free port with a temporary data directory. */
final class SamsaServer implements AutoCloseable {
    final int port;
    final Path dataDir;
    private final String[] overrides;
    private final List<String> prefix;
    private Process process;
    private Map<String, String> env = Map.of();

    SamsaServer(String... overrides) throws Exception {
        this(freePort(), overrides);
    }

    /** On the given port (overrides may add listeners beside it). */
    SamsaServer(int port, String... overrides) throws Exception {
        this(port, List.of(), overrides);
    }

    private SamsaServer(int port, List<String> prefix, String... overrides) throws Exception {
        this(port, prefix, true, overrides);
    }

    private SamsaServer(int port, List<String> prefix, boolean await, String... overrides) throws Exception {
        this.port = port;
        this.prefix = prefix;
        dataDir = Files.createTempDirectory("samsa-java-");
        this.overrides = overrides;
        launch();
        if (await) {
            awaitStarted();
        }
    }

    /**
     * A cluster node, started without waiting for its port: a node serves clients only once the
     * quorum has it caught up with the metadata log and unfenced, so its peers must start too
     * (as Kafka's brokers). Call awaitStarted() once every node is launched.
     */
    static SamsaServer launchNode(int port, String... overrides) throws Exception {
        return new SamsaServer(port, List.of(), false, overrides);
    }

    /** Under a descriptor limit (RLIMIT_NOFILE, soft and hard), set by prlimit. */
    static SamsaServer withNofile(int nofile, String... overrides) throws Exception {
        return new SamsaServer(freePort(), List.of("prlimit", "--nofile=" + nofile + ":" + nofile, "--"),
                overrides);
    }

    /** kill -9, then the same server again on the same port and data directory. */
    void killAndRestart() throws Exception {
        killAndRestart(Map.of());
    }

    /** kill -9, then the same server again with these environment variables added. */
    void killAndRestart(Map<String, String> env) throws Exception {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        this.env = env;
        start();
    }

    /** kill -9; the data directory and port are kept for restart(). */
    void kill() throws Exception {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** Starts the server again on the same port and data directory (after kill()). */
    void restart() throws Exception {
        start();
    }

    String log() throws IOException {
        return Files.readString(dataDir.resolve("server.log"));
    }

    private void start() throws Exception {
        launch();
        awaitStarted();
    }

    private void launch() throws Exception {
        String bin = System.getProperty("samsa.server", "../../../build/bin/samsa-server");
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(new File(bin).getCanonicalPath());
        cmd.add("--override");
        cmd.add("listeners=PLAINTEXT://127.0.0.1:" + port);
        cmd.add("--override");
        cmd.add("log.dirs=" + dataDir);
        for (String o : overrides) {
            cmd.add("--override");
            cmd.add(o);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        process = pb.redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dataDir.resolve("server.log").toFile())).start();
    }

    /**
     * Waits until the server accepts connections on its port: 20 s, 60 s for a cluster node, which
     * serves only once the quorum has it caught up and unfenced (after a kill -9, once the old
     * registration's broker session has ended).
     */
    void awaitStarted() throws Exception {
        boolean clusterNode = Arrays.stream(overrides).anyMatch(o -> o.startsWith("controller.quorum."));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(clusterNode ? 60 : 20);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("samsa-server exited: " + Files.readString(dataDir.resolve("server.log")));
            }
            try (Socket sock = new Socket()) {
                sock.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                Thread.sleep(20);
            }
        }
        throw new IllegalStateException("samsa-server did not start");
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    String bootstrap() {
        return "127.0.0.1:" + port;
    }

    @Override
    public void close() throws Exception {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
        try (var files = Files.walk(dataDir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}

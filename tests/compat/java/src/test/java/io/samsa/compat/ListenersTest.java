package io.samsa.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Properties;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Node;
import org.junit.jupiter.api.Test;

/** Several PLAINTEXT listeners: each is served and gives clients its own address. */
class ListenersTest {
    @Test
    void eachListenerAdvertisesItself() throws Exception {
        int first = SamsaServer.freePort(), second = SamsaServer.freePort();
        try (SamsaServer server = new SamsaServer(first,
                "listeners=PLAINTEXT://127.0.0.1:" + first + ",INTERNAL://127.0.0.1:" + second,
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT")) {
            for (int port : List.of(first, second)) {
                Properties p = new Properties();
                p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
                try (Admin admin = Admin.create(p)) {
                    List<Integer> ports = admin.describeCluster().nodes().get().stream()
                            .map(Node::port).collect(Collectors.toList());
                    assertEquals(List.of(port), ports);
                }
            }
        }
    }
}

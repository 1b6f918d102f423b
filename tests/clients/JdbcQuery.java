// One query through the Arrow Flight SQL JDBC driver, for tests/integration/observability.rs
// (a login by bearer JWT, `token=` in the URL):
//   java -cp flight-sql-jdbc-driver.jar JdbcQuery.java JDBC_URL SQL
// Prints "value: <first column of the first row>" or "error: <message>" (exit code 0 both).

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

public class JdbcQuery {
    public static void main(String[] args) {
        try (Connection c = DriverManager.getConnection(args[0]);
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(args[1])) {
            rs.next();
            System.out.println("value: " + rs.getString(1));
        } catch (Exception e) {
            StringBuilder why = new StringBuilder(String.valueOf(e.getMessage()));
            for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
                why.append(" <- ").append(t.getMessage());
            }
            System.out.println("error: " + why.toString().replace('\n', ' '));
        }
    }
}

// What DBeaver does on connect, through the Arrow Flight SQL JDBC driver: metadata, columns,
// a query, a prepared statement. Run by tests/integration/flight.rs as a single-file program:
//   java -cp flight-sql-jdbc-driver.jar JdbcClient.java JDBC_URL RECORDS
// Every check throws on failure; the last line printed is "jdbc: all checks passed".

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        long records = Long.parseLong(args[1]);
        try (Connection c = DriverManager.getConnection(url)) {
            DatabaseMetaData md = c.getMetaData();
            check("vcfq".equals(md.getDatabaseProductName()), "product " + md.getDatabaseProductName());
            check(md.getIdentifierQuoteString().equals("\""), "quote " + md.getIdentifierQuoteString());

            List<String> catalogs = new ArrayList<>();
            try (ResultSet rs = md.getCatalogs()) {
                while (rs.next()) catalogs.add(rs.getString("TABLE_CAT"));
            }
            check(catalogs.contains("datafusion"), "catalogs " + catalogs);
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check(schemas.contains("public"), "schemas " + schemas);
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, null, "%", null)) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check(tables.contains("calls"), "tables " + tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "public", "calls", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME"));
            }
            check(columns.size() >= 5 && columns.subList(0, 5).equals(List.of("chrom", "pos", "id", "ref", "alt")),
                  "columns " + columns);
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "calls")) {
                check(!rs.next(), "no primary keys");
            }
            // the driver answers getTypeInfo itself; it must not fail
            try (ResultSet rs = md.getTypeInfo()) {
                while (rs.next()) { }
            }

            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT count(*) AS n FROM calls")) {
                check(rs.next() && rs.getLong("n") == records, "count");
            }
            long rows = 0;
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT chrom, pos, ref FROM calls")) {
                while (rs.next()) {
                    check(rs.getLong(2) > 0 && rs.getString(1) != null, "row values");
                    rows++;
                }
            }
            check(rows == records, "scanned " + rows);
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM calls WHERE pos > ?")) {
                ps.setLong(1, 0L);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) == records, "prepared count");
                }
                ps.setLong(1, Long.MAX_VALUE);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) == 0, "prepared count, rebound");
                }
            }
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT * FROM no_such_table").next();
                throw new AssertionError("missing table accepted");
            } catch (SQLException e) {
                check(e.getMessage().contains("no_such_table"), "error " + e.getMessage());
            }
        }
        System.out.println("jdbc: all checks passed");
    }
}
